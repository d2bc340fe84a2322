//! The syntax tree from pest's pairs: statements, expressions by
//! precedence, strings with their interpolations.

use super::*;
use crate::error::SyntaxError;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use std::sync::{Arc, OnceLock};

pub(super) fn span_of(pair: &Pair<Rule>) -> Span {
    let s = pair.as_span();
    Span::new(s.start(), s.end())
}

pub(super) fn pratt() -> &'static PrattParser<Rule> {
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

pub(super) struct Builder {
    pub(super) depth: usize,
}

pub(super) type R<T> = Result<T, SyntaxError>;

pub(super) fn next<'a>(pairs: &mut Pairs<'a, Rule>, what: &str) -> R<Pair<'a, Rule>> {
    pairs.next().ok_or_else(|| SyntaxError::internal(&format!("missing {what}")))
}

pub(super) fn ident(pair: Pair<Rule>) -> Ident {
    Spanned::new(pair.as_str().to_string(), span_of(&pair))
}

impl Builder {
    pub(super) fn stmts(&mut self, pairs: Pairs<Rule>) -> R<Vec<Stmt>> {
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

pub(super) fn decode_escape(p: &Pair<Rule>) -> R<char> {
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
