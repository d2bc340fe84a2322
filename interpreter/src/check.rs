//! The static checker: everything that can be known before a model loads.
//! Names, tools, argument names and counts, rhai module functions, misplaced
//! statements, and the types that literals and tool signatures make known.
//! It reports every error of a script at once and never stops at the first.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use assay_grammar::*;

use crate::bind::{self, bind, defined_as, tool_params, wrong_type, Given, Mistake};
use crate::diag::{closest, Diag, SourceFile};
use crate::rhai_bridge::RhaiModule;
use crate::tool::{Registry, Signature};
use crate::types::Type;

#[derive(Clone)]
struct Var {
    ty: Type,
    func: Option<Arc<FnDef>>,
    module: Option<Arc<RhaiModule>>,
}

pub struct Checker<'a> {
    file: Arc<SourceFile>,
    registry: &'a Registry,
    modules: &'a HashMap<String, Arc<RhaiModule>>,
    scopes: Vec<HashMap<String, Var>>,
    diags: Vec<Diag>,
    fn_depth: usize,
    loop_depth: Vec<usize>,
    /// Top-level function bodies are checked after the top level, so they see
    /// every global, as they will when they are called.
    deferred: Vec<Arc<FnDef>>,
}

/// Fields that tensors and images have.
pub const TENSOR_FIELDS: &[&str] = &["shape", "ndim", "size"];
pub const IMAGE_FIELDS: &[&str] = &["width", "height"];

/// Checks a parsed program. `modules` are the rhai modules its `use`
/// statements loaded (a failed load was already reported by the caller).
pub fn check(
    file: &Arc<SourceFile>,
    program: &Program,
    registry: &Registry,
    modules: &HashMap<String, Arc<RhaiModule>>,
) -> Vec<Diag> {
    check_with(file, program, registry, modules, &[])
}

/// As `check`, with names bound before the script starts, and their types.
pub fn check_with(
    file: &Arc<SourceFile>,
    program: &Program,
    registry: &Registry,
    modules: &HashMap<String, Arc<RhaiModule>>,
    names: &[(String, Type)],
) -> Vec<Diag> {
    let mut c = Checker {
        file: file.clone(),
        registry,
        modules,
        scopes: vec![HashMap::new()],
        diags: Vec::new(),
        fn_depth: 0,
        loop_depth: vec![0],
        deferred: Vec::new(),
    };
    // Modules bound by the caller without a `use` (an agent's black box).
    let used: Vec<&str> = program
        .stmts
        .iter()
        .filter_map(|s| match &s.node {
            assay_grammar::StmtKind::Use { alias, .. } => Some(alias.node.as_str()),
            _ => None,
        })
        .collect();
    for (alias, m) in modules {
        if !used.contains(&alias.as_str()) {
            c.scopes[0].insert(alias.clone(), Var { ty: Type::Module, func: None, module: Some(m.clone()) });
        }
    }
    for (name, ty) in names {
        c.scopes[0].insert(name.clone(), Var { ty: ty.clone(), func: None, module: None });
    }
    c.top_level(program);
    c.diags.sort_by_key(|d| d.span.map(|s| s.start).unwrap_or(0));
    c.diags
}

impl<'a> Checker<'a> {
    fn err(
        &mut self,
        code: &'static str,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) {
        let d = Diag::new(code, message).at(&self.file, span, label).help(help);
        self.diags.push(d);
    }

    fn top_level(&mut self, program: &Program) {
        // `seed` and `use` placement.
        let mut seen_other = false;
        let mut seed_seen: Option<Span> = None;
        for s in &program.stmts {
            match &s.node {
                StmtKind::Seed(e) => {
                    if let Some(first) = seed_seen {
                        let (line, _) = self.file.line_col(first.start);
                        self.err(
                            crate::code::SEED,
                            s.span,
                            "`seed` given twice",
                            "second seed",
                            format!("the run's seed is set once, on line {line}; remove this one"),
                        );
                    } else if seen_other {
                        self.err(
                            crate::code::SEED,
                            s.span,
                            "`seed` must come before the experiment's statements",
                            "too late",
                            "move `seed N` to the top of the script, so every random choice depends on it",
                        );
                    }
                    seed_seen = Some(s.span);
                    match &e.node {
                        ExprKind::Number(n) if *n >= 0.0 && n.fract() == 0.0 && *n < 9.0e15 => {}
                        _ => self.err(
                            crate::code::SEED,
                            e.span,
                            "the seed must be a whole number literal",
                            "not a whole number",
                            "write e.g. `seed 7`",
                        ),
                    }
                }
                StmtKind::Use { alias, .. } => {
                    if self.scopes[0].contains_key(&alias.node) {
                        self.err(
                            crate::code::DUPLICATE,
                            alias.span,
                            format!("`{}` is already defined", alias.node),
                            "defined again",
                            "give each module its own alias",
                        );
                    }
                    if let Some(m) = self.modules.get(&alias.node) {
                        self.scopes[0]
                            .insert(alias.node.clone(), Var { ty: Type::Module, func: None, module: Some(m.clone()) });
                    } else {
                        self.scopes[0].insert(alias.node.clone(), Var { ty: Type::Module, func: None, module: None });
                    }
                }
                StmtKind::Fn(_) => {}
                _ => seen_other = true,
            }
        }
        self.hoist(&program.stmts);
        for s in &program.stmts {
            self.stmt(s, true);
        }
        // Top-level functions see every top-level name.
        let deferred = std::mem::take(&mut self.deferred);
        for def in deferred {
            self.fn_body(&def);
        }
    }

    /// Functions are visible in their whole block, before their definition.
    fn hoist(&mut self, stmts: &[Stmt]) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for s in stmts {
            if let StmtKind::Fn(def) = &s.node {
                if let Some(name) = &def.name {
                    if let Some(prev) = seen.get(name.node.as_str()) {
                        let (line, _) = self.file.line_col(prev.start);
                        self.err(
                            crate::code::DUPLICATE,
                            name.span,
                            format!("function `{}` is defined twice in this block", name.node),
                            "defined again",
                            format!("the first definition is on line {line}; rename one of them"),
                        );
                    }
                    seen.insert(&name.node, name.span);
                    self.define(&name.node, Var { ty: Type::Func, func: Some(def.clone()), module: None });
                }
            }
        }
    }

    fn define(&mut self, name: &str, var: Var) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.to_string(), var);
        }
    }

    fn lookup(&self, name: &str) -> Option<&Var> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    fn known_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.scopes.iter().flat_map(|s| s.keys().map(|k| k.as_str())).collect();
        for n in self.registry.names() {
            names.push(n);
        }
        names
    }

    fn block(&mut self, block: &Block) {
        self.scopes.push(HashMap::new());
        self.hoist(&block.node);
        for s in &block.node {
            self.stmt(s, false);
        }
        self.scopes.pop();
    }

    fn stmt(&mut self, s: &Stmt, top: bool) {
        match &s.node {
            StmtKind::Seed(_) => {
                if !top {
                    self.err(crate::code::SEED, s.span, "`seed` is only allowed at the top of the script", "inside a block", "set the seed once, as the script's first statement; tools that draw randomly also take `seed:`");
                }
            }
            StmtKind::Use { alias, path } => {
                if !top {
                    self.err(
                        crate::code::USE,
                        s.span,
                        "`use` is only allowed at the top level",
                        "inside a block",
                        "move the `use` to the top of the script",
                    );
                }
                if !self.modules.contains_key(&alias.node) && top {
                    // The load error itself was reported by the caller.
                    let _ = path;
                }
            }
            StmtKind::Let { name, value } => {
                let ty = self.expr(value);
                let func = match &value.node {
                    ExprKind::Lambda(def) => Some(def.clone()),
                    _ => None,
                };
                self.define(&name.node, Var { ty, func, module: None });
            }
            StmtKind::Assign { name, op, value } => {
                let vty = self.expr(value);
                match self.lookup(&name.node).cloned() {
                    None => {
                        let help = match closest(&name.node, self.known_names()) {
                            Some(c) => {
                                format!("declare it first with `let {} = ...`, or did you mean `{c}`?", name.node)
                            }
                            None => format!("declare it first with `let {} = ...`", name.node),
                        };
                        self.err(
                            crate::code::UNKNOWN_NAME,
                            name.span,
                            format!("cannot assign to unknown name `{}`", name.node),
                            "not declared",
                            help,
                        );
                    }
                    Some(var) => {
                        if var.module.is_some() || var.ty == Type::Module {
                            self.err(
                                crate::code::ASSIGN,
                                name.span,
                                format!("`{}` is a module and cannot be reassigned", name.node),
                                "a module",
                                "bind the value to a new name with `let`",
                            );
                        }
                        let new_ty = match op {
                            Some(op) => self.binary_type(*op, &var.ty, &vty, s.span),
                            None => vty,
                        };
                        let ty = if new_ty == var.ty { new_ty } else { Type::Any };
                        if let Some(scope) = self.scopes.iter_mut().rev().find(|sc| sc.contains_key(&name.node)) {
                            scope.insert(name.node.clone(), Var { ty, func: None, module: None });
                        }
                    }
                }
            }
            StmtKind::Fn(def) => {
                if top {
                    self.deferred.push(def.clone());
                } else {
                    self.fn_body(def);
                }
            }
            StmtKind::If { cond, then, otherwise } => {
                let t = self.expr(cond);
                self.expect_bool(&t, cond.span, "an `if` condition");
                self.block(then);
                if let Some(b) = otherwise {
                    self.block(b);
                }
            }
            StmtKind::For { index, var, iter, body } => {
                let t = self.expr(iter);
                if t.is_known() && !Type::iterable().accepts(&t) {
                    self.err(
                        crate::code::TYPE,
                        iter.span,
                        format!("cannot loop over a {t}"),
                        format!("a {t}"),
                        "loop over a list, a range like `0..n`, a string, a record or a tensor",
                    );
                }
                let (index_ty, elem_ty) = match &t {
                    Type::List(e) => (Type::Num, (**e).clone()),
                    Type::Range => (Type::Num, Type::Num),
                    Type::Str => (Type::Num, Type::Str),
                    Type::Record(_) => (Type::Str, Type::Any),
                    _ => (Type::Any, Type::Any),
                };
                self.scopes.push(HashMap::new());
                if let Some(i) = index {
                    self.define(&i.node, Var { ty: index_ty, func: None, module: None });
                }
                self.define(&var.node, Var { ty: elem_ty, func: None, module: None });
                if let Some(l) = self.loop_depth.last_mut() {
                    *l += 1;
                }
                self.block(body);
                if let Some(l) = self.loop_depth.last_mut() {
                    *l -= 1;
                }
                self.scopes.pop();
            }
            StmtKind::Return(e) => {
                if let Some(e) = e {
                    self.expr(e);
                }
                if self.fn_depth == 0 {
                    self.err(
                        crate::code::MISPLACED,
                        s.span,
                        "`return` outside a function",
                        "not in a function",
                        "`return` ends a function; at the top level, the script simply ends",
                    );
                }
            }
            StmtKind::Break | StmtKind::Continue => {
                if self.loop_depth.last().copied().unwrap_or(0) == 0 {
                    let word = if matches!(s.node, StmtKind::Break) { "break" } else { "continue" };
                    self.err(
                        crate::code::MISPLACED,
                        s.span,
                        format!("`{word}` outside a loop"),
                        "not in a `for` loop",
                        format!("`{word}` only works inside `for ... in ... {{ }}`"),
                    );
                }
            }
            StmtKind::Show(args) => {
                for a in args {
                    self.expr(a);
                }
            }
            StmtKind::Record { name, value } => {
                let t = self.expr(name);
                if t.is_known() && t != Type::Str {
                    self.err(
                        crate::code::TYPE,
                        name.span,
                        format!("a record's name must be a string, found {t}"),
                        "not a string",
                        "write `record \"name\", value`",
                    );
                }
                self.expr(value);
            }
            StmtKind::Assert { cond, message } => {
                let t = self.expr(cond);
                self.expect_bool(&t, cond.span, "an assertion");
                if let Some(m) = message {
                    let t = self.expr(m);
                    if t.is_known() && t != Type::Str {
                        self.err(
                            crate::code::TYPE,
                            m.span,
                            format!("an assertion's message must be a string, found {t}"),
                            "not a string",
                            "write `assert cond, \"what failed\"`",
                        );
                    }
                }
            }
            StmtKind::Expr(e) => {
                self.expr(e);
            }
        }
    }

    fn expect_bool(&mut self, t: &Type, span: Span, what: &str) {
        if t.is_known() && !Type::Bool.accepts(t) {
            self.err(
                crate::code::TYPE,
                span,
                format!("{what} must be true or false, found {t}"),
                format!("a {t}"),
                "compare explicitly, e.g. `len(xs) > 0` or `x != none`",
            );
        }
    }

    fn fn_body(&mut self, def: &Arc<FnDef>) {
        // Defaults are evaluated in the function's scope at call time.
        self.scopes.push(HashMap::new());
        let mut seen: HashMap<&str, ()> = HashMap::new();
        let mut default_seen = false;
        for p in &def.params {
            if seen.insert(&p.name.node, ()).is_some() {
                self.err(
                    crate::code::DUPLICATE,
                    p.name.span,
                    format!("parameter `{}` is named twice", p.name.node),
                    "repeated",
                    "give each parameter its own name",
                );
            }
            if let Some(d) = &p.default {
                default_seen = true;
                self.expr(d);
            } else if default_seen {
                self.err(
                    crate::code::PARAM_ORDER,
                    p.name.span,
                    format!("parameter `{}` has no default but follows one that does", p.name.node),
                    "needs a default",
                    "put parameters with defaults last",
                );
            }
            self.define(&p.name.node, Var { ty: Type::Any, func: None, module: None });
        }
        self.fn_depth += 1;
        self.loop_depth.push(0);
        match &def.body {
            FnBody::Block(b) => self.block(b),
            FnBody::Expr(e) => {
                self.expr(e);
            }
        }
        self.loop_depth.pop();
        self.fn_depth -= 1;
        self.scopes.pop();
    }

    fn expr(&mut self, e: &Expr) -> Type {
        match &e.node {
            ExprKind::Number(_) => Type::Num,
            ExprKind::Bool(_) => Type::Bool,
            ExprKind::None => Type::None,
            ExprKind::Str(parts) => {
                for p in parts {
                    if let StrPart::Expr(x) = p {
                        self.expr(x);
                    }
                }
                Type::Str
            }
            ExprKind::Name(n) => self.name(n, e.span),
            ExprKind::List(items) => {
                let mut elem: Option<Type> = None;
                for it in items {
                    let t = self.expr(it);
                    elem = Some(match elem {
                        None => t,
                        Some(prev) if prev == t => prev,
                        Some(_) => Type::Any,
                    });
                }
                Type::list(elem.unwrap_or(Type::Any))
            }
            ExprKind::Record(fields) => {
                let mut map = BTreeMap::new();
                for (k, v) in fields {
                    let t = self.expr(v);
                    map.insert(k.node.clone(), t);
                }
                Type::Record(Some(Arc::new(map)))
            }
            ExprKind::Unary { op, expr } => {
                let t = self.expr(expr);
                match op {
                    UnOp::Neg => {
                        if t.is_known() && !Type::OneOf(vec![Type::Num, Type::Tensor]).accepts(&t) {
                            self.err(
                                crate::code::TYPE,
                                e.span,
                                format!("cannot negate a {t}"),
                                format!("a {t}"),
                                "`-` applies to numbers and tensors",
                            );
                        }
                        if t == Type::Tensor {
                            Type::Tensor
                        } else if t.is_known() {
                            Type::Num
                        } else {
                            Type::Any
                        }
                    }
                    UnOp::Not => {
                        self.expect_bool(&t, expr.span, "the operand of `not`");
                        Type::Bool
                    }
                }
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.expr(lhs);
                let r = self.expr(rhs);
                self.binary_type(*op, &l, &r, e.span)
            }
            ExprKind::Call { callee, args } => self.call(callee, args, e.span),
            ExprKind::Method { receiver, name, args } => self.method(receiver, name, args, e.span),
            ExprKind::Field { expr, name } => {
                let t = self.expr(expr);
                self.field(&t, name)
            }
            ExprKind::Index { expr, index } => {
                let t = self.expr(expr);
                let i = self.expr(index);
                match &t {
                    Type::Num | Type::Bool | Type::None | Type::Func | Type::Image | Type::Module => {
                        self.err(
                            crate::code::TYPE,
                            e.span,
                            format!("cannot index a {t}"),
                            format!("a {t}"),
                            "index lists, strings, records, ranges and tensors: `xs[0]`, `r[\"key\"]`",
                        );
                        Type::Any
                    }
                    Type::List(elem) if i == Type::Num => (**elem).clone(),
                    Type::List(_) if i == Type::Range => t.clone(),
                    Type::Str => Type::Str,
                    Type::Range if i == Type::Num => Type::Num,
                    _ => Type::Any,
                }
            }
            ExprKind::Lambda(def) => {
                self.fn_body(def);
                Type::Func
            }
        }
    }

    fn name(&mut self, n: &str, span: Span) -> Type {
        if let Some(v) = self.lookup(n) {
            return v.ty.clone();
        }
        if self.registry.signature(n).is_some() {
            return Type::Func;
        }
        let help = match closest(n, self.known_names()) {
            Some(c) => format!("did you mean `{c}`?"),
            None => "define it with `let` before using it; `assay tools` lists the tools".to_string(),
        };
        self.err(crate::code::UNKNOWN_NAME, span, format!("unknown name `{n}`"), "not defined", help);
        Type::Any
    }

    fn field(&mut self, t: &Type, name: &Ident) -> Type {
        match t {
            Type::Record(Some(fields)) => match fields.get(&name.node) {
                Some(t) => t.clone(),
                None => {
                    let names: Vec<&str> = fields.keys().map(|k| k.as_str()).collect();
                    let help = match closest(&name.node, names.iter().copied()) {
                        Some(c) => {
                            format!("did you mean `{c}`? the record has: {}", names.join(", "))
                        }
                        None => format!("the record has: {}", names.join(", ")),
                    };
                    self.err(
                        crate::code::NO_FIELD,
                        name.span,
                        format!("the record has no field `{}`", name.node),
                        "no such field",
                        help,
                    );
                    Type::Any
                }
            },
            Type::Tensor => {
                if !TENSOR_FIELDS.contains(&name.node.as_str()) {
                    self.err(
                        crate::code::NO_FIELD,
                        name.span,
                        format!("a tensor has no field `{}`", name.node),
                        "no such field",
                        format!("tensors have {}", TENSOR_FIELDS.join(", ")),
                    );
                }
                if name.node == "shape" {
                    Type::list(Type::Num)
                } else {
                    Type::Num
                }
            }
            Type::Image => {
                if !IMAGE_FIELDS.contains(&name.node.as_str()) {
                    self.err(
                        crate::code::NO_FIELD,
                        name.span,
                        format!("an image has no field `{}`", name.node),
                        "no such field",
                        format!("images have {}", IMAGE_FIELDS.join(", ")),
                    );
                }
                Type::Num
            }
            Type::Num | Type::Str | Type::Bool | Type::None | Type::List(_) | Type::Range | Type::Func => {
                let help = if self.registry.signature(&name.node).is_some() {
                    format!("`{0}` is a tool: call it as `x.{0}()` or `{0}(x)`", name.node)
                } else {
                    "only records, tensors, images and tool objects have fields".to_string()
                };
                self.err(
                    crate::code::NO_FIELD,
                    name.span,
                    format!("a {t} has no field `{}`", name.node),
                    "no such field",
                    help,
                );
                Type::Any
            }
            _ => Type::Any,
        }
    }

    fn binary_type(&mut self, op: BinOp, l: &Type, r: &Type, span: Span) -> Type {
        use BinOp::*;
        let numeric = Type::OneOf(vec![Type::Num, Type::Tensor]);
        let both = |t: &Type| t.accepts(l) && t.accepts(r);
        let known = l.is_known() && r.is_known();
        match op {
            And | Or => {
                self.expect_bool(l, span, &format!("the left side of `{}`", op.symbol()));
                self.expect_bool(r, span, &format!("the right side of `{}`", op.symbol()));
                Type::Bool
            }
            Eq | Ne | In => Type::Bool,
            Lt | Le | Gt | Ge => {
                if known && !both(&Type::Num) && !both(&Type::Str) {
                    self.err(
                        crate::code::TYPE,
                        span,
                        format!("cannot compare {l} with {r} using `{}`", op.symbol()),
                        "incomparable",
                        "`<` and friends compare two numbers or two strings",
                    );
                }
                Type::Bool
            }
            Range => {
                for t in [l, r] {
                    if t.is_known() && !Type::Num.accepts(t) {
                        self.err(
                            crate::code::TYPE,
                            span,
                            format!("a range needs numbers, found {t}"),
                            "not a number",
                            "write `0..n` with whole numbers",
                        );
                    }
                }
                Type::Range
            }
            Add | Sub | Mul | Div | Rem | Pow => {
                let joins = op == Add && (both(&Type::Str) || both(&Type::list(Type::Any)));
                if known && !joins && !both(&numeric) {
                    let help = if op == Add && (*l == Type::Str || *r == Type::Str) {
                        "to build text, interpolate: \"value: {x}\""
                    } else if op == Add {
                        "`+` adds numbers or tensors, and joins two strings or two lists"
                    } else {
                        "arithmetic applies to numbers and tensors"
                    };
                    self.err(
                        crate::code::TYPE,
                        span,
                        format!("cannot apply `{}` to {l} and {r}", op.symbol()),
                        "incompatible operands",
                        help,
                    );
                    return Type::Any;
                }
                match (l, r) {
                    (Type::Num, Type::Num) => Type::Num,
                    (Type::Str, Type::Str) if op == Add => Type::Str,
                    (Type::List(a), Type::List(b)) if op == Add => {
                        Type::list(if a == b { (**a).clone() } else { Type::Any })
                    }
                    (Type::Tensor, x) | (x, Type::Tensor) if numeric.accepts(x) && x.is_known() => Type::Tensor,
                    _ => Type::Any,
                }
            }
        }
    }

    fn call(&mut self, callee: &Expr, args: &[Arg], span: Span) -> Type {
        if let ExprKind::Name(n) = &callee.node {
            if let Some(var) = self.lookup(n).cloned() {
                for a in args {
                    self.expr(&a.value);
                }
                if let Some(def) = &var.func {
                    self.check_script_call(n, def, args, span);
                } else if var.ty.is_known() && var.ty != Type::Func && !matches!(var.ty, Type::Handle(_)) {
                    self.err(
                        crate::code::NOT_CALLABLE,
                        callee.span,
                        format!("`{n}` is a {} and cannot be called", var.ty),
                        "not a function",
                        "only functions and tools can be called",
                    );
                }
                return Type::Any;
            }
            if let Some(sig) = self.registry.signature(n) {
                let arg_types: Vec<Type> = args.iter().map(|a| self.expr(&a.value)).collect();
                return self.check_tool_call(sig, args, &arg_types, None, span);
            }
            for a in args {
                self.expr(&a.value);
            }
            let help = match closest(n, self.known_names()) {
                Some(c) => match self.registry.signature(c) {
                    Some(sig) => format!("did you mean `{c}`? {}", sig.render()),
                    None => format!("did you mean `{c}`?"),
                },
                None => "`assay tools` lists every tool with its signature".to_string(),
            };
            self.err(
                crate::code::UNKNOWN_TOOL,
                callee.span,
                format!("unknown function or tool `{n}`"),
                "not defined",
                help,
            );
            return Type::Any;
        }
        let t = self.expr(callee);
        for a in args {
            self.expr(&a.value);
        }
        if t.is_known() && t != Type::Func && !matches!(t, Type::Handle(_)) {
            self.err(
                crate::code::NOT_CALLABLE,
                callee.span,
                format!("a {t} cannot be called"),
                "not a function",
                "only functions and tools can be called",
            );
        }
        Type::Any
    }

    fn method(&mut self, receiver: &Expr, name: &Ident, args: &[Arg], span: Span) -> Type {
        let rt = self.expr(receiver);
        // Module functions.
        if rt == Type::Module {
            for a in args {
                self.expr(&a.value);
                if let Some(n) = &a.name {
                    self.err(
                        crate::code::NAMED_ARGUMENT,
                        n.span,
                        "rhai functions take only positional arguments",
                        "named argument",
                        "pass the arguments in order",
                    );
                }
            }
            let module = match &receiver.node {
                ExprKind::Name(alias) => self.lookup(alias).and_then(|v| v.module.clone()),
                _ => None,
            };
            if let Some(m) = module {
                match m.functions.get(&name.node) {
                    None => {
                        let names: Vec<&str> = m.functions.keys().map(|k| k.as_str()).collect();
                        let help = match closest(&name.node, names.iter().copied()) {
                            Some(c) => format!("did you mean `{c}`? {} defines: {}", m.path_display, names.join(", ")),
                            None => format!(
                                "{} defines: {}",
                                m.path_display,
                                if names.is_empty() { "no functions".into() } else { names.join(", ") }
                            ),
                        };
                        self.err(
                            crate::code::UNKNOWN_FUNCTION,
                            name.span,
                            format!("module `{}` has no function `{}`", m.alias, name.node),
                            "not in the module",
                            help,
                        );
                    }
                    Some(overloads) => {
                        if !overloads.iter().any(|p| p.len() == args.len()) {
                            let forms: Vec<String> =
                                overloads.iter().map(|p| format!("{}({})", name.node, p.join(", "))).collect();
                            self.err(
                                crate::code::ARGUMENT_COUNT,
                                span,
                                format!(
                                    "`{}.{}` takes {} argument(s), given {}",
                                    m.alias,
                                    name.node,
                                    overloads.iter().map(|p| p.len().to_string()).collect::<Vec<_>>().join(" or "),
                                    args.len()
                                ),
                                "wrong number of arguments",
                                format!("defined as {}", forms.join(" and ")),
                            );
                        }
                    }
                }
            }
            return Type::Any;
        }
        // A record's function field.
        if let Type::Record(Some(fields)) = &rt {
            if let Some(ft) = fields.get(&name.node) {
                for a in args {
                    self.expr(&a.value);
                }
                if ft.is_known() && *ft != Type::Func {
                    self.err(
                        crate::code::NOT_CALLABLE,
                        name.span,
                        format!("field `{}` is a {ft} and cannot be called", name.node),
                        "not a function",
                        "only functions and tools can be called",
                    );
                }
                return Type::Any;
            }
        }
        // Sugar: x.f(a) is f(x, a).
        if let Some(sig) = self.registry.signature(&name.node) {
            let arg_types: Vec<Type> = args.iter().map(|a| self.expr(&a.value)).collect();
            return self.check_tool_call(sig, args, &arg_types, Some((rt, receiver.span)), span);
        }
        for a in args {
            self.expr(&a.value);
        }
        if matches!(rt, Type::Record(_) | Type::Any | Type::Handle(_)) {
            // A record field not known statically, or a tool object: checked at run time.
            if matches!(rt, Type::Record(None) | Type::Any) {
                return Type::Any;
            }
        }
        let help = match closest(&name.node, self.registry.names()) {
            Some(c) => {
                format!("did you mean `{c}`? {}", self.registry.signature(c).map(|s| s.render()).unwrap_or_default())
            }
            None => "`x.f(a)` calls the tool `f(x, a)`; `assay tools` lists the tools".to_string(),
        };
        self.err(
            crate::code::UNKNOWN_TOOL,
            name.span,
            format!("no tool or method `{}` for a {rt}", name.node),
            "unknown method",
            help,
        );
        Type::Any
    }

    /// Reports a mistake binding a call's arguments (see `crate::bind`).
    fn mistake(&mut self, m: Mistake) {
        self.err(m.code, m.span, m.message, m.label, m.help);
    }

    fn check_script_call(&mut self, name: &str, def: &FnDef, args: &[Arg], span: Span) {
        let params: Vec<bind::Param> =
            def.params.iter().map(|p| bind::Param { name: &p.name.node, required: p.default.is_none() }).collect();
        let shown = defined_as(name, &params);
        let given = args.iter().map(|a| Given { name: a.name.as_ref(), span: a.value.span, item: () }).collect();
        for m in bind(name, &params, &shown, false, given, span).mistakes {
            self.mistake(m);
        }
    }

    fn check_tool_call(
        &mut self,
        sig: &Signature,
        args: &[Arg],
        arg_types: &[Type],
        receiver: Option<(Type, Span)>,
        span: Span,
    ) -> Type {
        let params = tool_params(sig);
        let shown = sig.render();
        let method = receiver.is_some();
        let mut given: Vec<Given<Type>> = Vec::with_capacity(args.len() + 1);
        if let Some((t, s)) = receiver {
            given.push(Given { name: None, span: s, item: t });
        }
        for (a, t) in args.iter().zip(arg_types) {
            given.push(Given { name: a.name.as_ref(), span: a.value.span, item: t.clone() });
        }
        let bound = bind(sig.name, &params, &shown, method, given, span);
        for m in bound.mistakes {
            self.mistake(m);
        }
        for (p, slot) in sig.params.iter().zip(bound.slots) {
            if let Some((t, s)) = slot {
                if !p.ty.accepts(&t) {
                    self.mistake(wrong_type(sig.name, p.name, &p.ty, &t.to_string(), s, &shown));
                }
            }
        }
        sig.returns.clone()
    }
}
