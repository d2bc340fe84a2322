//! Statements: bindings, control flow, and the experiment statements
//! `show`, `record` and `assert`.

use std::sync::Arc;

use assay_grammar::{Block, Expr, Ident, Stmt, StmtKind};

use super::{AssertOutcome, EvalResult, Flow, Run, RuntimeError, Shown};
use crate::tool::iter_values;
use crate::value::{Closure, Func, Value};

/// How deeply a recorded value may nest lists and records.
const MAX_RECORD_NESTING: usize = 64;

/// The nesting depth of lists and records, counted no further than needed.
fn nesting(v: &Value, depth: usize) -> usize {
    if depth > MAX_RECORD_NESTING {
        return depth;
    }
    match v {
        Value::List(items) => items.iter().map(|x| nesting(x, depth + 1)).max().unwrap_or(depth + 1),
        Value::Record(fields) => fields.values().map(|x| nesting(x, depth + 1)).max().unwrap_or(depth + 1),
        _ => depth,
    }
}

impl<'a> Run<'a> {
    /// Runs statements in the current scope (the top level, a function body).
    pub(crate) fn exec_block_in_place(&mut self, stmts: &[Stmt]) -> EvalResult<Flow> {
        // Functions are visible in their whole block.
        for s in stmts {
            if let StmtKind::Fn(def) = &s.node {
                if let Some(name) = &def.name {
                    let closure = Closure { def: def.clone(), captured: self.capture() };
                    self.define(&name.node, Value::Func(Func::Script(Arc::new(closure))));
                }
            }
        }
        for s in stmts {
            match self.stmt(s)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    pub(crate) fn exec_block(&mut self, block: &Block) -> EvalResult<Flow> {
        self.push_scope();
        let r = self.exec_block_in_place(&block.node);
        self.pop_scope();
        r
    }

    fn stmt(&mut self, s: &Stmt) -> EvalResult<Flow> {
        super::PROGRESS.store(s.span.start, std::sync::atomic::Ordering::Relaxed);
        match &s.node {
            StmtKind::Seed(_) | StmtKind::Use { .. } | StmtKind::Fn(_) => {}
            StmtKind::Let { name, value } => {
                let v = self.eval(value)?;
                self.define(&name.node, v);
            }
            StmtKind::Assign { name, op, value } => {
                let rhs = self.eval(value)?;
                let v = match op {
                    Some(op) => {
                        let cur = self
                            .lookup(&name.node)
                            .ok_or_else(|| RuntimeError::new(format!("unknown name `{}`", name.node), name.span))?;
                        self.binary(*op, cur, rhs, s.span)?
                    }
                    None => rhs,
                };
                if !self.assign(&name.node, v) {
                    return Err(RuntimeError::new(format!("`{}` is not defined yet", name.node), name.span)
                        .help(format!("declare it with `let {} = ...` before assigning", name.node)));
                }
            }
            StmtKind::If { cond, then, otherwise } => {
                let c = self.eval(cond)?;
                let b = self.truth(&c, cond.span, "an `if` condition")?;
                if b {
                    return self.exec_block(then);
                } else if let Some(o) = otherwise {
                    return self.exec_block(o);
                }
            }
            StmtKind::For { index, var, iter, body } => return self.for_loop(index.as_ref(), var, iter, body),
            StmtKind::Return(e) => {
                let v = match e {
                    Some(e) => self.eval(e)?,
                    None => Value::None,
                };
                return Ok(Flow::Return(v));
            }
            StmtKind::Break => return Ok(Flow::Break),
            StmtKind::Continue => return Ok(Flow::Continue),
            StmtKind::Show(args) => {
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(self.eval(a)?);
                }
                // `show "title", x, y`: a leading string with more values is the title.
                let title = match values.first() {
                    Some(Value::Str(t)) if values.len() > 1 => Some(t.to_string()),
                    _ => None,
                };
                if title.is_some() {
                    values.remove(0);
                }
                let line = self.line_of(s.span);
                self.out.shows.push(Shown { title, values, line });
            }
            StmtKind::Record { name, value } => self.record(name, value)?,
            StmtKind::Assert { cond, message } => {
                let c = self.eval(cond)?;
                let passed = self.truth(&c, cond.span, "an assertion")?;
                let message = match message {
                    Some(m) => Some(self.eval(m)?.to_text()),
                    None => None,
                };
                // Quoted in the canonical spacing: reformatting the script
                // never changes its results.
                let expr = assay_grammar::format_expr(self.file.slice(cond.span));
                let line = self.line_of(s.span);
                self.out.asserts.push(AssertOutcome { passed, expr, message, line });
            }
            StmtKind::Expr(e) => {
                self.eval(e)?;
            }
        }
        Ok(Flow::Normal)
    }

    /// `for [index,] var in iter { body }`: a range walked lazily, a
    /// record by its keys, anything else by its items.
    fn for_loop(&mut self, index: Option<&Ident>, var: &Ident, iter: &Expr, body: &Block) -> EvalResult<Flow> {
        let it = self.eval(iter)?;
        // A range is walked lazily: `for i in 0..10**15 { break }` costs nothing.
        let pairs: Box<dyn Iterator<Item = (Value, Value)>> = match &it {
            Value::Range(a, b) => {
                Box::new((*a..*b).enumerate().map(|(k, i)| (Value::Num(k as f64), Value::Num(i as f64))))
            }
            Value::Record(fields) => {
                Box::new(fields.iter().map(|(k, v)| (Value::str(k), v.clone())).collect::<Vec<_>>().into_iter())
            }
            other => {
                let items = iter_values(other).ok_or_else(|| {
                    RuntimeError::new(format!("cannot loop over a {}", other.type_name()), iter.span)
                        .help("loop over a list, a range like `0..n`, a string, a record or a tensor")
                })?;
                Box::new(items.into_iter().enumerate().map(|(i, v)| (Value::Num(i as f64), v)))
            }
        };
        for (k, v) in pairs {
            self.push_scope();
            match (index, &it) {
                (Some(i), _) => {
                    self.define(&i.node, k);
                    self.define(&var.node, v);
                }
                // `for k in record` walks the keys.
                (None, Value::Record(_)) => self.define(&var.node, k),
                (None, _) => self.define(&var.node, v),
            }
            let r = self.exec_block(body);
            self.pop_scope();
            match r? {
                Flow::Normal | Flow::Continue => {}
                Flow::Break => break,
                ret @ Flow::Return(_) => return Ok(ret),
            }
        }
        Ok(Flow::Normal)
    }

    /// `record name, value`: written once, and not nested past what
    /// results.json can hold.
    fn record(&mut self, name: &Expr, value: &Expr) -> EvalResult<()> {
        let n = match self.eval(name)? {
            Value::Str(s) => s.to_string(),
            other => {
                return Err(RuntimeError::new(
                    format!("a record's name must be a string, found {}", other.type_name()),
                    name.span,
                ))
            }
        };
        let v = self.eval(value)?;
        if nesting(&v, 0) > MAX_RECORD_NESTING {
            return Err(RuntimeError::new(
                format!("this value nests more than {MAX_RECORD_NESTING} lists or records deep; results.json would grow with the square of the depth"),
                value.span,
            )
            .code(crate::Code::RecordTooDeep)
            .help("record a flatter summary of it (counts, a few levels, or a tensor)"));
        }
        if self.out.records.contains_key(&n) {
            return Err(RuntimeError::new(format!("record `{n}` was already written"), name.span)
                .code(crate::Code::DuplicateRecord)
                .help("each record name is written once; in a loop, interpolate: record \"acc {i}\", x"));
        }
        self.out.records.insert(n, v);
        Ok(())
    }

    pub(crate) fn truth(&self, v: &Value, span: assay_grammar::Span, what: &str) -> EvalResult<bool> {
        match v {
            Value::Bool(b) => Ok(*b),
            other => Err(RuntimeError::new(format!("{what} must be true or false, found {}", other.type_name()), span)
                .code(crate::Code::Type)
                .help("compare explicitly, e.g. `len(xs) > 0` or `x != none`")),
        }
    }
}
