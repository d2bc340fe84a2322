//! Expressions: literals, names, collections, fields and indexing.

use std::collections::BTreeMap;
use std::sync::Arc;

use assay_grammar::{BinOp, Expr, ExprKind, Span, StrPart, UnOp};

use super::{EvalResult, Run, RuntimeError};
use crate::check::{IMAGE_FIELDS, TENSOR_FIELDS};
use crate::diag::closest;
use crate::tool::tool_value;
use crate::value::{Closure, Func, Value};

impl<'a> Run<'a> {
    pub(crate) fn eval(&mut self, e: &Expr) -> EvalResult<Value> {
        match &e.node {
            ExprKind::Number(n) => Ok(Value::Num(*n)),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::None => Ok(Value::None),
            ExprKind::Str(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        StrPart::Text(t) => s.push_str(t),
                        StrPart::Expr(x) => s.push_str(&self.eval(x)?.to_text()),
                    }
                }
                Ok(Value::str(s))
            }
            ExprKind::Name(n) => self.name(n, e.span),
            ExprKind::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    out.push(self.eval(it)?);
                }
                Ok(Value::list(out))
            }
            ExprKind::Record(fields) => {
                let mut out = BTreeMap::new();
                for (k, v) in fields {
                    out.insert(k.node.clone(), self.eval(v)?);
                }
                Ok(Value::Record(Arc::new(out)))
            }
            ExprKind::Unary { op, expr } => {
                let v = self.eval(expr)?;
                match op {
                    UnOp::Not => Ok(Value::Bool(!self.truth(&v, expr.span, "the operand of `not`")?)),
                    UnOp::Neg => self.negate(v, e.span),
                }
            }
            ExprKind::Binary { op: BinOp::And, lhs, rhs } => {
                let l = self.eval(lhs)?;
                if !self.truth(&l, lhs.span, "the left side of `and`")? {
                    return Ok(Value::Bool(false));
                }
                let r = self.eval(rhs)?;
                Ok(Value::Bool(self.truth(&r, rhs.span, "the right side of `and`")?))
            }
            ExprKind::Binary { op: BinOp::Or, lhs, rhs } => {
                let l = self.eval(lhs)?;
                if self.truth(&l, lhs.span, "the left side of `or`")? {
                    return Ok(Value::Bool(true));
                }
                let r = self.eval(rhs)?;
                Ok(Value::Bool(self.truth(&r, rhs.span, "the right side of `or`")?))
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.eval(lhs)?;
                let r = self.eval(rhs)?;
                self.binary(*op, l, r, e.span)
            }
            ExprKind::Call { callee, args } => self.eval_call(callee, args, e.span),
            ExprKind::Method { receiver, name, args } => self.eval_method(receiver, name, args, e.span),
            ExprKind::Field { expr, name } => {
                let v = self.eval(expr)?;
                self.field(&v, &name.node, name.span)
            }
            ExprKind::Index { expr, index } => {
                let v = self.eval(expr)?;
                let i = self.eval(index)?;
                self.index(&v, &i, index.span)
            }
            ExprKind::Lambda(def) => {
                let closure = Closure { def: def.clone(), captured: self.capture() };
                Ok(Value::Func(Func::Script(Arc::new(closure))))
            }
        }
    }

    fn name(&self, n: &str, span: Span) -> EvalResult<Value> {
        if let Some(v) = self.lookup(n) {
            return Ok(v);
        }
        if self.registry.signature(n).is_some() {
            return Ok(tool_value(n));
        }
        Err(RuntimeError::new(format!("`{n}` is not defined here"), span)
            .code(crate::Code::UnknownName)
            .help("a name must be bound with `let` before this line runs"))
    }

    pub(crate) fn field(&self, v: &Value, name: &str, span: Span) -> EvalResult<Value> {
        let no_field = |what: String, names: Vec<String>| {
            let help = match closest(name, names.iter().map(|s| s.as_str())) {
                Some(c) => format!("did you mean `{c}`? available: {}", names.join(", ")),
                None if names.is_empty() => "this value has no fields".to_string(),
                None => format!("available: {}", names.join(", ")),
            };
            RuntimeError::new(format!("{what} has no field `{name}`"), span).code(crate::Code::NoField).help(help)
        };
        match v {
            Value::Record(fields) => {
                fields.get(name).cloned().ok_or_else(|| no_field("the record".into(), fields.keys().cloned().collect()))
            }
            Value::Tensor(t) => match name {
                "shape" => Ok(Value::nums(t.shape().iter().map(|d| *d as f64))),
                "ndim" => Ok(Value::Num(t.ndim() as f64)),
                "size" => Ok(Value::Num(t.len() as f64)),
                _ => Err(no_field("a tensor".into(), TENSOR_FIELDS.iter().map(|s| s.to_string()).collect())),
            },
            Value::Image(img) => match name {
                "width" => Ok(Value::Num(img.width as f64)),
                "height" => Ok(Value::Num(img.height as f64)),
                _ => Err(no_field("an image".into(), IMAGE_FIELDS.iter().map(|s| s.to_string()).collect())),
            },
            Value::Handle(h) => h.field(name).ok_or_else(|| {
                no_field(format!("a {}", h.kind()), h.field_names().iter().map(|s| s.to_string()).collect())
            }),
            Value::Module(m) => {
                if m.functions.contains_key(name) {
                    Ok(Value::Func(Func::Rhai(m.clone(), Arc::from(name))))
                } else {
                    Err(no_field(format!("module `{}`", m.alias), m.functions.keys().cloned().collect()))
                }
            }
            other => Err(no_field(format!("a {}", other.type_name()), Vec::new())),
        }
    }

    fn index(&self, v: &Value, i: &Value, span: Span) -> EvalResult<Value> {
        let idx = |len: usize, n: f64| -> EvalResult<usize> {
            if n.fract() != 0.0 {
                return Err(RuntimeError::new(format!("index {n} is not a whole number"), span));
            }
            let k = if n < 0.0 { len as f64 + n } else { n };
            if k < 0.0 || k >= len as f64 {
                return Err(RuntimeError::new(format!("index {n} is out of range for length {len}"), span)
                    .code(crate::Code::Index)
                    .help(format!("valid indices are 0..{len} (or -{len}..-1 from the end)")));
            }
            Ok(k as usize)
        };
        let slice = |len: usize, a: i64, b: i64| -> (usize, usize) {
            let fix = |x: i64| -> usize {
                let x = if x < 0 { len as i64 + x } else { x };
                x.clamp(0, len as i64) as usize
            };
            let (s, e) = (fix(a), fix(b));
            (s, e.max(s))
        };
        match (v, i) {
            (Value::List(items), Value::Num(n)) => Ok(items[idx(items.len(), *n)?].clone()),
            (Value::List(items), Value::Range(a, b)) => {
                let (s, e) = slice(items.len(), *a, *b);
                Ok(Value::list(items[s..e].to_vec()))
            }
            (Value::Str(s), Value::Num(n)) => {
                let chars: Vec<char> = s.chars().collect();
                Ok(Value::str(chars[idx(chars.len(), *n)?].to_string()))
            }
            (Value::Str(s), Value::Range(a, b)) => {
                let chars: Vec<char> = s.chars().collect();
                let (st, e) = slice(chars.len(), *a, *b);
                Ok(Value::str(chars[st..e].iter().collect::<String>()))
            }
            (Value::Range(a, b), Value::Num(n)) => {
                let len = (b - a).max(0) as usize;
                Ok(Value::Num((*a + idx(len, *n)? as i64) as f64))
            }
            (Value::Record(fields), Value::Str(k)) => fields.get(k.as_ref()).cloned().ok_or_else(|| {
                let keys: Vec<&str> = fields.keys().map(|k| k.as_str()).collect();
                RuntimeError::new(format!("the record has no key \"{k}\""), span)
                    .code(crate::Code::NoField)
                    .help(format!("keys: {}", keys.join(", ")))
            }),
            (Value::Tensor(t), Value::Range(a, b)) if t.ndim() > 0 => {
                let (s, e) = slice(t.shape()[0], *a, *b);
                Ok(Value::tensor(t.slice_axis(ndarray::Axis(0), ndarray::Slice::from(s..e)).to_owned()))
            }
            (Value::Tensor(t), Value::Num(n)) => {
                if t.ndim() == 0 {
                    return Err(RuntimeError::new("cannot index a scalar tensor", span));
                }
                let k = idx(t.shape()[0], *n)?;
                let sub = t.index_axis(ndarray::Axis(0), k);
                if sub.ndim() == 0 {
                    Ok(Value::Num(sub.iter().next().copied().unwrap_or(0.0) as f64))
                } else {
                    Ok(Value::tensor(sub.to_owned()))
                }
            }
            (v, i) => {
                Err(RuntimeError::new(format!("cannot index a {} with a {}", v.type_name(), i.type_name()), span)
                    .code(crate::Code::Type)
                    .help("lists, strings and tensors take a number or a range `a..b`; records take a string key"))
            }
        }
    }
}
