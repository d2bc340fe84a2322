//! The abstract syntax tree. Every node carries the byte span of the source
//! text it came from; nothing here knows about tools, values or files.

use std::sync::Arc;

/// A half-open byte range `[start, end)` into one source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.start, s.len()).into()
    }
}

/// A node with the span it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

pub type Ident = Spanned<String>;

#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub stmts: Vec<Stmt>,
}

pub type Stmt = Spanned<StmtKind>;
pub type Block = Spanned<Vec<Stmt>>;

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    /// `seed 7`
    Seed(Expr),
    /// `use "metrics.rhai" as m`
    Use {
        path: Spanned<String>,
        alias: Ident,
    },
    /// `let x = e`
    Let {
        name: Ident,
        value: Expr,
    },
    /// `x = e`, `x += e`, ...
    Assign {
        name: Ident,
        op: Option<BinOp>,
        value: Expr,
    },
    /// `fn f(a, b = 2) { ... }`
    Fn(Arc<FnDef>),
    If {
        cond: Expr,
        then: Block,
        otherwise: Option<Block>,
    },
    /// `for x in xs { }` or `for i, x in xs { }`
    For {
        index: Option<Ident>,
        var: Ident,
        iter: Expr,
        body: Block,
    },
    Return(Option<Expr>),
    Break,
    Continue,
    /// `show "title", value, ...`
    Show(Vec<Expr>),
    /// `record "name", value`
    Record {
        name: Expr,
        value: Expr,
    },
    /// `assert cond, "message"`
    Assert {
        cond: Expr,
        message: Option<Expr>,
    },
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FnDef {
    /// `None` for a lambda.
    pub name: Option<Ident>,
    pub params: Vec<Param>,
    pub body: FnBody,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FnBody {
    Block(Block),
    /// `x => x * 2`: the value of one expression.
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub default: Option<Expr>,
}

pub type Expr = Box<Spanned<ExprKind>>;

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Number(f64),
    Str(Vec<StrPart>),
    Bool(bool),
    None,
    Name(String),
    List(Vec<Expr>),
    Record(Vec<(Ident, Expr)>),
    Unary {
        op: UnOp,
        expr: Expr,
    },
    Binary {
        op: BinOp,
        lhs: Expr,
        rhs: Expr,
    },
    /// `callee(args)` where the callee is any expression (usually a name).
    Call {
        callee: Expr,
        args: Vec<Arg>,
    },
    /// `receiver.name(args)`: a module function, a record's function field,
    /// or sugar for `name(receiver, args)`.
    Method {
        receiver: Expr,
        name: Ident,
        args: Vec<Arg>,
    },
    Field {
        expr: Expr,
        name: Ident,
    },
    Index {
        expr: Expr,
        index: Expr,
    },
    Lambda(Arc<FnDef>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum StrPart {
    Text(String),
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Range,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Range => "..",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Pow => "**",
        }
    }
}

impl UnOp {
    pub fn symbol(self) -> &'static str {
        match self {
            UnOp::Neg => "-",
            UnOp::Not => "not",
        }
    }
}
