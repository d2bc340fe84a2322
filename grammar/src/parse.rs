//! Source text to AST: runs the pest grammar, folds operators with a Pratt
//! parser, decodes string escapes, and turns pest failures into
//! [`SyntaxError`]s worded for people (and LLMs), not in rule names.

use std::sync::{Arc, OnceLock};

use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;

use crate::ast::*;
use crate::error::SyntaxError;

#[derive(pest_derive::Parser)]
#[grammar = "assay.pest"]
struct AssayParser;

/// Scripts larger than this are refused before parsing.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;
/// Deepest nesting of brackets, blocks and interpolations accepted.
pub const MAX_NESTING: usize = 64;
/// Deepest expression tree accepted (long operator chains nest too).
pub const MAX_EXPR_DEPTH: usize = 256;

/// Parses a whole script.
pub fn parse(source: &str) -> Result<Program, SyntaxError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(SyntaxError::new(
            "script too large",
            Span::new(0, 0),
            format!("{} bytes, more than the limit of {MAX_SOURCE_BYTES}", source.len()),
        )
        .with_help("split the experiment into smaller scripts, or move data into files it reads"));
    }
    check_nesting(source)?;
    pest::set_error_detail(true);
    let mut pairs = AssayParser::parse(Rule::program, source)
        .map_err(|e| unbalanced(source).unwrap_or_else(|| convert_error(source, e)))?;
    let program = pairs.next().ok_or_else(|| SyntaxError::internal("empty parse"))?;
    let mut b = Builder { depth: 0 };
    let stmts = b.stmts(program.into_inner())?;
    Ok(Program { stmts })
}

/// The most syntax errors one parse reports.
const MAX_SYNTAX_ERRORS: usize = 20;

/// Parses a whole script and, if it has syntax errors, finds as many of
/// them as it can (each in its own top-level statement): after an error,
/// the statement holding it is blanked (the same bytes, so later spans are
/// unchanged) and the rest parsed again. A later error is kept only if it
/// lies past what was blanked, so one mistake is never reported twice.
pub fn parse_all(source: &str) -> Result<Program, Vec<SyntaxError>> {
    let first = match parse(source) {
        Ok(p) => return Ok(p),
        Err(e) => e,
    };
    if source.len() > MAX_SOURCE_BYTES {
        return Err(vec![first]);
    }
    let mut text = source.to_string();
    let mut errors = vec![first];
    while errors.len() < MAX_SYNTAX_ERRORS {
        let at = errors.last().map_or(0, |e| e.span.start);
        let Some((start, end)) = statement_around(&text, at) else { break };
        text = blank(&text, start, end);
        match parse(&text) {
            Ok(_) => break,
            Err(e) if e.span.start >= end && e.span.start < text.len() => errors.push(e),
            Err(_) => break,
        }
    }
    Err(errors)
}

/// `text` with `start..end` made blanks (newlines kept, every other
/// character replaced by as many spaces as its bytes).
fn blank(text: &str, start: usize, end: usize) -> String {
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    for c in text[start..end].chars() {
        if c == '\n' {
            out.push('\n');
        } else {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        }
    }
    out.push_str(&text[end..]);
    out
}

/// The top-level statement around byte `at`: from the start of the line
/// that begins it (outside every bracket) to the start of the next such
/// line with text on it. An error at the very start of a statement is the
/// previous statement's (it ended too early), so that one is taken.
fn statement_around(text: &str, at: usize) -> Option<(usize, usize)> {
    let mut events: Vec<(usize, i32)> = Vec::new();
    let mut raw_open = false;
    scan(text, |b| {
        match b {
            Bracket::Open { at, .. } => events.push((at, 1)),
            Bracket::Close { at, .. } => events.push((at, -1)),
            Bracket::UnclosedRaw { .. } => raw_open = true,
            Bracket::End { .. } => {}
        }
        None
    });
    if raw_open {
        return None;
    }
    // Line starts outside every bracket, holding something besides blanks and comments.
    let mut starts = Vec::new();
    let mut depth = 0i32;
    let mut ev = events.iter().peekable();
    let mut line_start = 0usize;
    for line in text.split_inclusive('\n') {
        while let Some((pos, d)) = ev.peek() {
            if *pos < line_start {
                depth += d;
                ev.next();
            } else {
                break;
            }
        }
        let body = line.trim();
        if depth == 0 && !body.is_empty() && !body.starts_with('#') {
            starts.push(line_start + (line.len() - line.trim_start().len()));
        }
        line_start += line.len();
    }
    let at = at.min(text.len());
    let i = starts.iter().rposition(|s| *s <= at)?;
    let i = if starts[i] == at && i > 0 { i - 1 } else { i };
    let end = starts.get(i + 1).copied().unwrap_or(text.len());
    Some((starts[i], end))
}

/// What the bracket scanner reports.
enum Bracket {
    /// An opening `(`, `[`, `{` (also an interpolation) or `"`, and the depth it makes.
    Open { depth: usize, at: usize },
    /// A closer and the opener it closes, if any: (opening byte, offset).
    Close { byte: u8, at: usize, opener: Option<(u8, usize)> },
    /// A backtick string that never closes.
    UnclosedRaw { at: usize, close: &'static str },
    /// The end of the text, with the innermost opener still open.
    End { open: Option<(u8, usize)> },
}

/// Walks the text as the grammar sees it — comments and raw strings
/// skipped, escapes and `{{` `}}` inside strings, `{` in a string opening
/// an interpolation — and reports brackets to `f`, which may stop the walk
/// with an error.
fn scan(source: &str, mut f: impl FnMut(Bracket) -> Option<SyntaxError>) -> Option<SyntaxError> {
    let bytes = source.as_bytes();
    // (opening byte, offset); b'"' marks a string.
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if matches!(stack.last(), Some((b'"', _))) {
            match c {
                b'\\' => i += 1,
                b'"' => {
                    let opener = stack.pop();
                    if let Some(e) = f(Bracket::Close { byte: c, at: i, opener }) {
                        return Some(e);
                    }
                }
                b'{' if bytes.get(i + 1) == Some(&b'{') => i += 1,
                b'}' if bytes.get(i + 1) == Some(&b'}') => i += 1,
                b'{' => {
                    stack.push((c, i));
                    if let Some(e) = f(Bracket::Open { depth: stack.len(), at: i }) {
                        return Some(e);
                    }
                }
                _ => {}
            }
        } else {
            match c {
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'`' => {
                    let close = if source[i..].starts_with("```") { "```" } else { "`" };
                    let from = i + close.len();
                    match source.get(from..).and_then(|rest| rest.find(close)) {
                        Some(off) => i = from + off + close.len() - 1,
                        None => return f(Bracket::UnclosedRaw { at: i, close }),
                    }
                }
                b'"' | b'(' | b'[' | b'{' => {
                    stack.push((c, i));
                    if let Some(e) = f(Bracket::Open { depth: stack.len(), at: i }) {
                        return Some(e);
                    }
                }
                b')' | b']' | b'}' => {
                    let opener = stack.pop();
                    if let Some(e) = f(Bracket::Close { byte: c, at: i, opener }) {
                        return Some(e);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    f(Bracket::End { open: stack.last().copied() })
}

/// Rejects pathological nesting before pest recurses into it.
fn check_nesting(source: &str) -> Result<(), SyntaxError> {
    let err = scan(source, |b| match b {
        Bracket::Open { depth, at } if depth > MAX_NESTING => Some(
            SyntaxError::new(
                "nested too deeply",
                Span::new(at, at + 1),
                format!("more than {MAX_NESTING} levels of brackets, blocks or strings"),
            )
            .with_help("name intermediate values with `let` to flatten the expression"),
        ),
        _ => None,
    });
    err.map_or(Ok(()), Err)
}

fn closer_of(open: u8) -> char {
    match open {
        b'(' => ')',
        b'[' => ']',
        _ => '}',
    }
}

/// After a parse failure: an unclosed or mismatched bracket or string is
/// the likeliest cause, and its opening position is the useful one to show.
fn unbalanced(source: &str) -> Option<SyntaxError> {
    let line_of = |off: usize| source[..off].matches('\n').count() + 1;
    scan(source, |b| match b {
        Bracket::Open { .. } => None,
        Bracket::UnclosedRaw { at, close } => Some(
            SyntaxError::new("unterminated raw string", Span::new(at, at + close.len()), "this string is never closed")
                .with_help(format!("close it with {close}")),
        ),
        Bracket::Close { byte: b'"', .. } => None,
        Bracket::Close { byte, at, opener: None } => Some(
            SyntaxError::new(format!("unmatched `{}`", byte as char), Span::new(at, at + 1), "nothing to close here")
                .with_help("remove it, or add the opening bracket it belongs to"),
        ),
        Bracket::Close { byte, at, opener: Some((open, open_at)) } => {
            let close = closer_of(open);
            (close != byte as char).then(|| {
                SyntaxError::new(
                    format!(
                        "`{}` does not close the `{}` opened on line {}",
                        byte as char,
                        open as char,
                        line_of(open_at)
                    ),
                    Span::new(at, at + 1),
                    format!("expected `{close}`"),
                )
                .with_help(format!("close the `{}` with `{close}` first", open as char))
            })
        }
        Bracket::End { open: None } => None,
        Bracket::End { open: Some((b'"', at)) } => Some(
            SyntaxError::new("unterminated string", Span::new(at, at + 1), "this string is never closed")
                .with_help("close it with `\"`; for text with quotes or braces use `backticks`"),
        ),
        Bracket::End { open: Some((open, at)) } => {
            let close = closer_of(open);
            Some(
                SyntaxError::new(
                    format!("`{}` is never closed", open as char),
                    Span::new(at, at + 1),
                    format!("opened here, expected a `{close}` later"),
                )
                .with_help(format!("add the missing `{close}`, or check for a `,` between items")),
            )
        }
    })
}

fn span_of(pair: &Pair<Rule>) -> Span {
    let s = pair.as_span();
    Span::new(s.start(), s.end())
}

fn pratt() -> &'static PrattParser<Rule> {
    static P: OnceLock<PrattParser<Rule>> = OnceLock::new();
    P.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::or, Assoc::Left))
            .op(Op::infix(Rule::and, Assoc::Left))
            .op(Op::prefix(Rule::not))
            .op(Op::infix(Rule::eq, Assoc::Left)
                | Op::infix(Rule::ne, Assoc::Left)
                | Op::infix(Rule::lt, Assoc::Left)
                | Op::infix(Rule::le, Assoc::Left)
                | Op::infix(Rule::gt, Assoc::Left)
                | Op::infix(Rule::ge, Assoc::Left)
                | Op::infix(Rule::in_op, Assoc::Left))
            .op(Op::infix(Rule::range, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left)
                | Op::infix(Rule::div, Assoc::Left)
                | Op::infix(Rule::rem, Assoc::Left))
            .op(Op::prefix(Rule::neg))
            .op(Op::infix(Rule::pow, Assoc::Right))
    })
}

struct Builder {
    depth: usize,
}

type R<T> = Result<T, SyntaxError>;

fn next<'a>(pairs: &mut Pairs<'a, Rule>, what: &str) -> R<Pair<'a, Rule>> {
    pairs.next().ok_or_else(|| SyntaxError::internal(&format!("missing {what}")))
}

fn ident(pair: Pair<Rule>) -> Ident {
    Spanned::new(pair.as_str().to_string(), span_of(&pair))
}

impl Builder {
    fn stmts(&mut self, pairs: Pairs<Rule>) -> R<Vec<Stmt>> {
        let mut out = Vec::new();
        for p in pairs {
            if p.as_rule() == Rule::EOI {
                continue;
            }
            out.push(self.stmt(p)?);
        }
        Ok(out)
    }

    fn block(&mut self, pair: Pair<Rule>) -> R<Block> {
        let span = span_of(&pair);
        Ok(Spanned::new(self.stmts(pair.into_inner())?, span))
    }

    fn stmt(&mut self, pair: Pair<Rule>) -> R<Stmt> {
        let span = span_of(&pair);
        let rule = pair.as_rule();
        let mut it = pair.into_inner();
        let kind = match rule {
            Rule::seed_stmt => {
                next(&mut it, "seed keyword")?;
                StmtKind::Seed(self.expr(next(&mut it, "seed value")?)?)
            }
            Rule::use_stmt => {
                next(&mut it, "use keyword")?;
                let path_pair = next(&mut it, "use path")?;
                let path_span = span_of(&path_pair);
                let path = self.plain_string(path_pair)?;
                next(&mut it, "as keyword")?;
                let alias = ident(next(&mut it, "alias")?);
                StmtKind::Use { path: Spanned::new(path, path_span), alias }
            }
            Rule::let_stmt => {
                next(&mut it, "let keyword")?;
                let name = ident(next(&mut it, "name")?);
                let value = self.expr(next(&mut it, "value")?)?;
                StmtKind::Let { name, value }
            }
            Rule::assign_stmt => {
                let name = ident(next(&mut it, "name")?);
                let op = match next(&mut it, "operator")?.as_str() {
                    "+=" => Some(BinOp::Add),
                    "-=" => Some(BinOp::Sub),
                    "*=" => Some(BinOp::Mul),
                    "/=" => Some(BinOp::Div),
                    _ => None,
                };
                let value = self.expr(next(&mut it, "value")?)?;
                StmtKind::Assign { name, op, value }
            }
            Rule::fn_stmt => {
                next(&mut it, "fn keyword")?;
                let name = ident(next(&mut it, "name")?);
                let mut params = Vec::new();
                let mut body = None;
                for p in it {
                    match p.as_rule() {
                        Rule::params => params = self.params(p)?,
                        Rule::block => body = Some(self.block(p)?),
                        _ => {}
                    }
                }
                let body = body.ok_or_else(|| SyntaxError::internal("fn without body"))?;
                StmtKind::Fn(Arc::new(FnDef { name: Some(name), params, body: FnBody::Block(body), span }))
            }
            Rule::if_stmt => self.if_stmt(it)?,
            Rule::for_stmt => {
                next(&mut it, "for keyword")?;
                let first = ident(next(&mut it, "loop variable")?);
                let second = next(&mut it, "in")?;
                let (index, var) = if second.as_rule() == Rule::ident {
                    next(&mut it, "in keyword")?;
                    (Some(first), ident(second))
                } else {
                    (None, first)
                };
                let iter = self.expr(next(&mut it, "iterable")?)?;
                let body = self.block(next(&mut it, "loop body")?)?;
                StmtKind::For { index, var, iter, body }
            }
            Rule::return_stmt => {
                next(&mut it, "return keyword")?;
                StmtKind::Return(match it.next() {
                    Some(e) => Some(self.expr(e)?),
                    None => None,
                })
            }
            Rule::break_stmt => StmtKind::Break,
            Rule::continue_stmt => StmtKind::Continue,
            Rule::show_stmt => {
                next(&mut it, "show keyword")?;
                StmtKind::Show(it.map(|e| self.expr(e)).collect::<R<_>>()?)
            }
            Rule::record_stmt => {
                next(&mut it, "record keyword")?;
                let name = self.expr(next(&mut it, "record name")?)?;
                let value = self.expr(next(&mut it, "record value")?)?;
                StmtKind::Record { name, value }
            }
            Rule::assert_stmt => {
                next(&mut it, "assert keyword")?;
                let cond = self.expr(next(&mut it, "condition")?)?;
                let message = match it.next() {
                    Some(e) => Some(self.expr(e)?),
                    None => None,
                };
                StmtKind::Assert { cond, message }
            }
            Rule::expr_stmt => StmtKind::Expr(self.expr(next(&mut it, "expression")?)?),
            other => return Err(SyntaxError::internal(&format!("unexpected statement rule {other:?}"))),
        };
        Ok(Spanned::new(kind, span))
    }

    fn if_stmt(&mut self, mut it: Pairs<Rule>) -> R<StmtKind> {
        next(&mut it, "if keyword")?;
        let cond = self.expr(next(&mut it, "condition")?)?;
        let then = self.block(next(&mut it, "then block")?)?;
        let mut otherwise = None;
        if it.next().is_some() {
            let p = next(&mut it, "else branch")?;
            let span = span_of(&p);
            otherwise = Some(if p.as_rule() == Rule::if_stmt {
                let nested = self.if_stmt(p.into_inner())?;
                Spanned::new(vec![Spanned::new(nested, span)], span)
            } else {
                self.block(p)?
            });
        }
        Ok(StmtKind::If { cond, then, otherwise })
    }

    fn params(&mut self, pair: Pair<Rule>) -> R<Vec<Param>> {
        let mut out = Vec::new();
        for p in pair.into_inner() {
            let mut it = p.into_inner();
            let name = ident(next(&mut it, "parameter name")?);
            let default = match it.next() {
                Some(e) => Some(self.expr(e)?),
                None => None,
            };
            out.push(Param { name, default });
        }
        Ok(out)
    }

    fn expr(&mut self, pair: Pair<Rule>) -> R<Expr> {
        self.depth += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return Err(SyntaxError::new(
                "expression too deeply nested",
                span_of(&pair),
                format!("more than {MAX_EXPR_DEPTH} nested operations"),
            )
            .with_help("split the expression with `let` bindings"));
        }
        let r = self.expr_inner(pair);
        self.depth -= 1;
        r
    }

    fn expr_inner(&mut self, pair: Pair<Rule>) -> R<Expr> {
        // Count operators: a flat chain `1+1+1...` still builds a deep tree.
        let ops = pair.clone().into_inner().filter(|p| p.as_rule() != Rule::operand).count();
        if self.depth + ops > MAX_EXPR_DEPTH {
            return Err(SyntaxError::new(
                "expression too long",
                span_of(&pair),
                format!("more than {MAX_EXPR_DEPTH} operators in one expression"),
            )
            .with_help("split the expression with `let` bindings, or use sum()/all() over a list"));
        }
        let pairs = pair.into_inner();
        pratt()
            .map_primary(|p| self.operand(p))
            .map_prefix(|op, rhs| {
                let rhs = rhs?;
                let span = span_of(&op).join(rhs.span);
                let op = if op.as_rule() == Rule::neg { UnOp::Neg } else { UnOp::Not };
                Ok(Box::new(Spanned::new(ExprKind::Unary { op, expr: rhs }, span)))
            })
            .map_infix(|lhs, op, rhs| {
                let (lhs, rhs) = (lhs?, rhs?);
                let span = lhs.span.join(rhs.span);
                let op = match op.as_rule() {
                    Rule::or => BinOp::Or,
                    Rule::and => BinOp::And,
                    Rule::eq => BinOp::Eq,
                    Rule::ne => BinOp::Ne,
                    Rule::lt => BinOp::Lt,
                    Rule::le => BinOp::Le,
                    Rule::gt => BinOp::Gt,
                    Rule::ge => BinOp::Ge,
                    Rule::in_op => BinOp::In,
                    Rule::range => BinOp::Range,
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    Rule::rem => BinOp::Rem,
                    _ => BinOp::Pow,
                };
                Ok(Box::new(Spanned::new(ExprKind::Binary { op, lhs, rhs }, span)))
            })
            .parse(pairs)
    }

    fn operand(&mut self, pair: Pair<Rule>) -> R<Expr> {
        let mut it = pair.into_inner();
        let mut e = self.primary(next(&mut it, "primary")?)?;
        let mut pending_field: Option<Ident> = None;
        for post in it {
            let post_span = span_of(&post);
            match post.as_rule() {
                Rule::call => {
                    let args = self.args(post)?;
                    if let Some(name) = pending_field.take() {
                        let span = e.span.join(post_span);
                        e = Box::new(Spanned::new(ExprKind::Method { receiver: e, name, args }, span));
                    } else {
                        let span = e.span.join(post_span);
                        e = Box::new(Spanned::new(ExprKind::Call { callee: e, args }, span));
                    }
                    continue;
                }
                _ => {
                    if let Some(name) = pending_field.take() {
                        let span = e.span.join(name.span);
                        e = Box::new(Spanned::new(ExprKind::Field { expr: e, name }, span));
                    }
                }
            }
            match post.as_rule() {
                Rule::field => {
                    let name = ident(next(&mut post.into_inner(), "field name")?);
                    pending_field = Some(name);
                }
                Rule::index => {
                    let index = self.expr(next(&mut post.into_inner(), "index")?)?;
                    let span = e.span.join(post_span);
                    e = Box::new(Spanned::new(ExprKind::Index { expr: e, index }, span));
                }
                _ => {}
            }
        }
        if let Some(name) = pending_field.take() {
            let span = e.span.join(name.span);
            e = Box::new(Spanned::new(ExprKind::Field { expr: e, name }, span));
        }
        Ok(e)
    }

    fn args(&mut self, pair: Pair<Rule>) -> R<Vec<Arg>> {
        let mut out = Vec::new();
        for a in pair.into_inner() {
            let span = span_of(&a);
            let inner = next(&mut a.into_inner(), "argument")?;
            if inner.as_rule() == Rule::named_arg {
                let mut it = inner.into_inner();
                let name = ident(next(&mut it, "argument name")?);
                let value = self.expr(next(&mut it, "argument value")?)?;
                out.push(Arg { name: Some(name), value, span });
            } else {
                out.push(Arg { name: None, value: self.expr(inner)?, span });
            }
        }
        Ok(out)
    }

    fn primary(&mut self, pair: Pair<Rule>) -> R<Expr> {
        let span = span_of(&pair);
        let kind = match pair.as_rule() {
            Rule::number => {
                let text: String = pair.as_str().chars().filter(|c| *c != '_').collect();
                let n: f64 = text.parse().map_err(|_| {
                    SyntaxError::new("invalid number", span, "not a number")
                        .with_help("write numbers like 42, 0.5 or 1e-3")
                })?;
                if !n.is_finite() {
                    return Err(SyntaxError::new("number out of range", span, "too large for a 64-bit float")
                        .with_help("numbers must be below about 1.8e308"));
                }
                ExprKind::Number(n)
            }
            Rule::string => ExprKind::Str(self.string_parts(pair)?),
            Rule::raw_string => {
                let text = pair.into_inner().next().map(|p| p.as_str().to_string()).unwrap_or_default();
                ExprKind::Str(vec![StrPart::Text(text)])
            }
            Rule::kw_true => ExprKind::Bool(true),
            Rule::kw_false => ExprKind::Bool(false),
            Rule::kw_none => ExprKind::None,
            Rule::ident => ExprKind::Name(pair.as_str().to_string()),
            Rule::paren => return self.expr(next(&mut pair.into_inner(), "parenthesised expression")?),
            Rule::list => ExprKind::List(pair.into_inner().map(|e| self.expr(e)).collect::<R<_>>()?),
            Rule::record_lit => {
                let mut fields: Vec<(Ident, Expr)> = Vec::new();
                for f in pair.into_inner() {
                    let mut it = f.into_inner();
                    let key_pair = next(&mut it, "field name")?;
                    let key_span = span_of(&key_pair);
                    let key = if key_pair.as_rule() == Rule::string {
                        self.plain_string(key_pair)?
                    } else {
                        key_pair.as_str().to_string()
                    };
                    if fields.iter().any(|(k, _)| k.node == key) {
                        return Err(SyntaxError::new("duplicate field", key_span, format!("`{key}` is given twice"))
                            .with_help("each field of a record literal must be named once"));
                    }
                    let value = self.expr(next(&mut it, "field value")?)?;
                    fields.push((Spanned::new(key, key_span), value));
                }
                ExprKind::Record(fields)
            }
            Rule::lambda => {
                let mut it = pair.into_inner();
                let params_pair = next(&mut it, "lambda parameters")?;
                let params = params_pair.into_inner().map(|p| Param { name: ident(p), default: None }).collect();
                let body_pair = next(&mut it, "lambda body")?;
                let body = if body_pair.as_rule() == Rule::block {
                    FnBody::Block(self.block(body_pair)?)
                } else {
                    FnBody::Expr(self.expr(body_pair)?)
                };
                ExprKind::Lambda(Arc::new(FnDef { name: None, params, body, span }))
            }
            other => return Err(SyntaxError::internal(&format!("unexpected primary {other:?}"))),
        };
        Ok(Box::new(Spanned::new(kind, span)))
    }

    /// A string that must not interpolate (paths in `use`, record keys).
    fn plain_string(&mut self, pair: Pair<Rule>) -> R<String> {
        let span = span_of(&pair);
        let parts = if pair.as_rule() == Rule::raw_string {
            vec![StrPart::Text(pair.into_inner().next().map(|p| p.as_str().to_string()).unwrap_or_default())]
        } else {
            self.string_parts(pair)?
        };
        let mut s = String::new();
        for p in parts {
            match p {
                StrPart::Text(t) => s.push_str(&t),
                StrPart::Expr(_) => {
                    return Err(SyntaxError::new("interpolation not allowed here", span, "this string must be literal")
                        .with_help("write the text literally; use {{ for a brace"))
                }
            }
        }
        Ok(s)
    }

    fn string_parts(&mut self, pair: Pair<Rule>) -> R<Vec<StrPart>> {
        let mut parts: Vec<StrPart> = Vec::new();
        let mut text = String::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::str_text => text.push_str(p.as_str()),
                Rule::lbrace_lit => text.push('{'),
                Rule::rbrace_lit => text.push('}'),
                Rule::escape => text.push(decode_escape(&p)?),
                Rule::interp => {
                    if !text.is_empty() {
                        parts.push(StrPart::Text(std::mem::take(&mut text)));
                    }
                    let e = self.expr(next(&mut p.into_inner(), "interpolated expression")?)?;
                    parts.push(StrPart::Expr(e));
                }
                _ => {}
            }
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(StrPart::Text(text));
        }
        Ok(parts)
    }
}

fn decode_escape(p: &Pair<Rule>) -> R<char> {
    let s = p.as_str();
    let span = span_of(p);
    let bad = || {
        SyntaxError::new("unknown escape", span, format!("`{s}` is not an escape"))
            .with_help("escapes are \\n \\t \\r \\0 \\\\ \\\" \\{ \\} and \\u{HEX}; for raw text use `backticks`")
    };
    let mut chars = s.chars().skip(1);
    Ok(match chars.next() {
        Some('n') => '\n',
        Some('t') => '\t',
        Some('r') => '\r',
        Some('0') => '\0',
        Some('\\') => '\\',
        Some('"') => '"',
        Some('{') => '{',
        Some('}') => '}',
        Some('u') => {
            let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
            let hex = hex.trim_start_matches('u');
            u32::from_str_radix(hex, 16).ok().and_then(char::from_u32).ok_or_else(bad)?
        }
        _ => return Err(bad()),
    })
}

/// Words for the grammar's rules, as a person would name them.
fn rule_words(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::expr | Rule::operand | Rule::paren | Rule::lambda | Rule::lambda_params => "an expression",
        Rule::number => "a number",
        Rule::string | Rule::raw_string => "a string",
        Rule::ident | Rule::name => "a name",
        Rule::list => "a list",
        Rule::record_lit => "a record",
        Rule::block => "a block `{ ... }`",
        Rule::call => "`(`",
        Rule::index => "`[`",
        Rule::field => "`.`",
        Rule::arg | Rule::named_arg => "an argument",
        Rule::params | Rule::param => "a parameter name",
        Rule::assign_op => "`=`",
        Rule::or
        | Rule::and
        | Rule::eq
        | Rule::ne
        | Rule::lt
        | Rule::le
        | Rule::gt
        | Rule::ge
        | Rule::in_op
        | Rule::range
        | Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div
        | Rule::rem
        | Rule::pow => "an operator",
        Rule::EOI => "end of input",
        Rule::kw_else => "`else`",
        Rule::kw_in => "`in`",
        Rule::kw_as => "`as`",
        Rule::seed_stmt
        | Rule::use_stmt
        | Rule::let_stmt
        | Rule::fn_stmt
        | Rule::if_stmt
        | Rule::for_stmt
        | Rule::return_stmt
        | Rule::show_stmt
        | Rule::record_stmt
        | Rule::assert_stmt
        | Rule::assign_stmt
        | Rule::expr_stmt
        | Rule::break_stmt
        | Rule::continue_stmt => "a statement",
        Rule::interp => "an interpolation `{expr}`",
        Rule::str_text | Rule::escape | Rule::lbrace_lit | Rule::rbrace_lit => "string text",
        Rule::kw_let
        | Rule::kw_fn
        | Rule::kw_if
        | Rule::kw_for
        | Rule::kw_return
        | Rule::kw_seed
        | Rule::kw_use
        | Rule::kw_show
        | Rule::kw_record
        | Rule::kw_assert
        | Rule::kw_break
        | Rule::kw_continue => "a statement",
        Rule::kw_true | Rule::kw_false | Rule::kw_none => "an expression",
        _ => return None,
    })
}

fn convert_error(source: &str, e: pest::error::Error<Rule>) -> SyntaxError {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let mut expected: Vec<String> = Vec::new();
    let mut push = |w: String| {
        if !expected.contains(&w) {
            expected.push(w);
        }
    };
    if let pest::error::ErrorVariant::ParsingError { positives, .. } = &e.variant {
        for r in positives {
            if let Some(w) = rule_words(*r) {
                push(w.to_string());
            }
        }
    }
    if let Some(attempts) = e.parse_attempts() {
        for t in attempts.expected_tokens() {
            let token = t.to_string();
            if token != "BUILTIN_RULE"
                && !token.contains("..")
                && !token.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}').is_empty()
            {
                let w = match token.as_str() {
                    "\"" => "a string".to_string(),
                    "`" | "```" => "a string".to_string(),
                    "#" | "_" => continue,
                    t if t.chars().all(|c| c.is_ascii_alphabetic()) => format!("`{t}`"),
                    t => format!("`{t}`"),
                };
                push(w);
            }
        }
        for cs in attempts.call_stacks() {
            let rule = cs.deepest.get_rule().copied().or(cs.parent);
            if let Some(w) = rule.and_then(rule_words) {
                push(w.to_string());
            }
        }
    }
    // Closing brackets and commas first, operators last: what is missing is
    // more often a bracket or a value than an operator.
    expected.sort_by_key(|w| match w.as_str() {
        "`)`" | "`]`" | "`}`" | "`,`" => 0,
        "an operator" => 3,
        w if w.starts_with('`') => 2,
        _ => 1,
    });
    expected.truncate(7);

    let found = found_token(source, pos);
    let span = Span::new(pos, (pos + found.len()).min(source.len()));
    let found_words = if found.is_empty() { "end of input".to_string() } else { format!("`{found}`") };
    let expected_words = join_or(&expected);
    let message = if expected_words.is_empty() {
        format!("unexpected {found_words}")
    } else {
        format!("expected {expected_words}, found {found_words}")
    };
    let help = help_for(source, pos, &found, &expected);
    SyntaxError::new(message, span, format!("found {found_words}")).with_help(help)
}

fn found_token(source: &str, pos: usize) -> String {
    let rest = source.get(pos..).unwrap_or("");
    let mut chars = rest.chars();
    match chars.next() {
        None => String::new(),
        Some(c) if c.is_alphanumeric() || c == '_' => {
            rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').take(40).collect()
        }
        Some(c) => c.to_string(),
    }
}

fn join_or(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} or {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

/// Where the innermost interpolation open at `pos` starts: the `{` of a
/// `"...{expr}..."` string whose expression has not closed by `pos`.
fn open_interpolation(source: &str, pos: usize) -> Option<usize> {
    #[derive(Clone, Copy)]
    enum State {
        Code,
        Str,
        Interp { depth: usize, start: usize },
    }
    let b = source.as_bytes();
    let end = pos.min(b.len());
    let mut stack = vec![State::Code];
    let mut i = 0;
    while i < end {
        let c = b[i];
        match stack.last().copied().unwrap_or(State::Code) {
            State::Str => match c {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'{' if b.get(i + 1) == Some(&b'{') => i += 1,
                b'{' => stack.push(State::Interp { depth: 0, start: i }),
                _ => {}
            },
            state => match c {
                b'"' => stack.push(State::Str),
                b'#' => {
                    while i < end && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'`' => {
                    let fence = if source[i..].starts_with("```") { "```" } else { "`" };
                    let body = i + fence.len();
                    i = source.get(body..).and_then(|r| r.find(fence)).map_or(b.len(), |k| body + k + fence.len() - 1);
                }
                b'{' => {
                    if let State::Interp { depth, start } = state {
                        stack.pop();
                        stack.push(State::Interp { depth: depth + 1, start });
                    }
                }
                b'}' => {
                    if let State::Interp { depth, start } = state {
                        stack.pop();
                        if depth > 0 {
                            stack.push(State::Interp { depth: depth - 1, start });
                        }
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    stack.iter().rev().find_map(|s| match s {
        State::Interp { start, .. } => Some(*start),
        _ => None,
    })
}

fn help_for(source: &str, pos: usize, found: &str, expected: &[String]) -> String {
    if let Some(at) = open_interpolation(source, pos) {
        let line = source[..at].matches('\n').count() + 1;
        let column = source[..at].rfind('\n').map_or(at, |n| at - n - 1) + 1;
        return format!(
            "the `{{` at line {line}, column {column} starts an interpolation `{{expr}}` inside the string; if it is meant as a literal brace, write `{{{{` (and `}}}}`), or use a backtick string `...`, which never interpolates"
        );
    }
    let before = source.get(..pos).unwrap_or("").trim_end();
    // Keywords of other languages near the error explain most failures.
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let context = source.get(line_start..(pos + found.len()).min(source.len())).unwrap_or("");
    for word in context.split(|c: char| !c.is_alphanumeric() && c != '_') {
        match word {
            "elif" => return "Assay writes `else if`, not `elif`".into(),
            "while" => return "Assay has no `while`; loop over a range: `for i in 0..n { ... }`".into(),
            "def" | "function" => return "define functions with `fn name(a, b) { ... }`".into(),
            "lambda" => return "write anonymous functions as `x => x * 2` or `(a, b) => a + b`".into(),
            "var" | "const" => return "bind names with `let`".into(),
            _ => {}
        }
    }
    if found == "=" && before.ends_with("==") {
        return "`===` is not an operator; compare with `==`".into();
    }
    if found.is_empty() {
        return "the script ended early: close every `(`, `[`, `{` and string".into();
    }
    match found {
        "let" | "fn" | "if" | "for" | "show" | "record" | "assert" | "seed" | "use" | "return" => {
            return format!(
                "`{found}` is a keyword and starts a statement; it cannot be used as a name or inside an expression"
            );
        }
        "def" | "function" => return "define functions with `fn name(a, b) { ... }`".into(),
        "elif" => return "write `else if`".into(),
        "while" => return "Assay has no `while`; loop over a range: `for i in 0..n { ... }`".into(),
        "{" if expected.iter().any(|e| e == "an expression") => {
            return "records are written `{name: value}`; blocks only follow if/for/fn".into()
        }
        "'" => return "strings use double quotes \"...\" or backticks `...`".into(),
        ":" if before.ends_with(')') || before.ends_with(|c: char| c.is_alphanumeric()) => {
            return "blocks use braces, not colons: `if x > 0 { ... }`".into()
        }
        _ => {}
    }
    if expected.iter().any(|e| e == "`)`") {
        return "check for a missing `)` or `,` between arguments".into();
    }
    if expected.iter().any(|e| e == "`]`") {
        return "check for a missing `]` or `,` between items".into();
    }
    if expected.iter().any(|e| e == "`}`") {
        return "check for a missing `}` or `,` between record fields".into();
    }
    if expected.iter().any(|e| e == "an expression") {
        return "a value is missing here: a number, string, name, list, record or call".into();
    }
    "see docs/language.md for the syntax of statements and expressions".into()
}
