//! Operators: arithmetic on numbers and tensors (broadcasting), joining
//! strings and lists, comparison, membership and ranges.

use assay_grammar::{BinOp, Span};
use ndarray::ArrayD;

use super::{EvalResult, Run, RuntimeError};
use crate::value::Value;

fn type_err(op: BinOp, l: &Value, r: &Value, span: Span) -> RuntimeError {
    let help = if matches!(l, Value::Str(_)) || matches!(r, Value::Str(_)) {
        "to build text, interpolate: \"value: {x}\""
    } else {
        "arithmetic applies to numbers and tensors; `+` also joins strings and lists"
    };
    RuntimeError::new(format!("cannot apply `{}` to {} and {}", op.symbol(), l.type_name(), r.type_name()), span)
        .code(crate::Code::Type)
        .help(help)
}

fn too_large(what: &str, n: usize, max: usize, span: Span) -> RuntimeError {
    let unit = if what == "string" { "bytes" } else { "items" };
    RuntimeError::new(format!("this {what} would hold {n} {unit}, more than the {max} a {what} may hold"), span)
        .code(crate::Code::TooLarge)
        .help("a value that doubles in a loop grows past any budget; build less, or summarise as you go")
}

fn num_op(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Rem => a % b,
        BinOp::Pow => a.powf(b),
        _ => f64::NAN,
    }
}

fn tensor_op(op: BinOp, a: &ArrayD<f32>, b: &ArrayD<f32>, span: Span) -> EvalResult<ArrayD<f32>> {
    let f = |x: f32, y: f32| num_op(op, x as f64, y as f64) as f32;
    // One side broadcast to the other's shape: computed in place of a copy.
    if let Some(bb) = b.broadcast(a.raw_dim()) {
        let mut out = a.clone();
        out.zip_mut_with(&bb, |x, y| *x = f(*x, *y));
        return Ok(out);
    }
    if let Some(ab) = a.broadcast(b.raw_dim()) {
        let mut out = b.clone();
        out.zip_mut_with(&ab, |y, x| *y = f(*x, *y));
        return Ok(out);
    }
    // Both broadcast (NumPy's rule: [3, 1] with [1, 4] gives [3, 4]).
    let no = || {
        RuntimeError::new(format!("tensor shapes {:?} and {:?} do not broadcast", a.shape(), b.shape()), span)
            .code(crate::Code::Shape)
            .help("shapes must match, or one side must have size 1 in each differing dimension (aligned from the last)")
    };
    let shape = broadcast_shape(a.shape(), b.shape()).ok_or_else(no)?;
    let (Some(ab), Some(bb)) = (a.broadcast(shape.clone()), b.broadcast(shape.clone())) else { return Err(no()) };
    // Fallible: a product of two vectors can be far larger than either.
    let n = shape.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d)).unwrap_or(usize::MAX);
    let mut data: Vec<f32> = Vec::new();
    if n > crate::value::MAX_TENSOR_ELEMENTS || data.try_reserve_exact(n).is_err() {
        return Err(RuntimeError::new(
            format!(
                "broadcasting {:?} with {:?} gives a tensor of shape {shape:?}, more than the run's memory allows",
                a.shape(),
                b.shape()
            ),
            span,
        )
        .code(crate::Code::BudgetMemory)
        .help("broadcast smaller tensors, or raise the budget with --memory"));
    }
    data.extend(ab.iter().zip(bb.iter()).map(|(x, y)| f(*x, *y)));
    ArrayD::from_shape_vec(shape, data).map_err(|e| RuntimeError::new(e.to_string(), span))
}

/// NumPy's broadcast shape of two shapes, aligned from the last axis.
fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |s: &[usize], i: usize| if i + s.len() >= rank { s[i + s.len() - rank] } else { 1 };
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y || y == 1 => Some(x),
            (1, y) => Some(y),
            _ => None,
        })
        .collect()
}

impl<'a> Run<'a> {
    pub(crate) fn negate(&self, v: Value, span: Span) -> EvalResult<Value> {
        match v {
            Value::Num(n) => Ok(Value::Num(-n)),
            Value::Tensor(t) => Ok(Value::tensor(t.mapv(|x| -x))),
            other => {
                Err(RuntimeError::new(format!("cannot negate a {}", other.type_name()), span).code(crate::Code::Type))
            }
        }
    }

    pub(crate) fn binary(&self, op: BinOp, l: Value, r: Value, span: Span) -> EvalResult<Value> {
        use BinOp::*;
        match op {
            Eq => Ok(Value::Bool(l.equals(&r))),
            Ne => Ok(Value::Bool(!l.equals(&r))),
            Lt | Le | Gt | Ge => {
                let ord = match (&l, &r) {
                    (Value::Num(a), Value::Num(b)) => a.partial_cmp(b),
                    (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
                    _ => {
                        return Err(RuntimeError::new(
                            format!("cannot compare {} with {}", l.type_name(), r.type_name()),
                            span,
                        )
                        .code(crate::Code::Type)
                        .help("`<` and friends compare two numbers or two strings"))
                    }
                };
                let Some(ord) = ord else {
                    return Ok(Value::Bool(false));
                };
                use std::cmp::Ordering::*;
                Ok(Value::Bool(match op {
                    Lt => ord == Less,
                    Le => ord != Greater,
                    Gt => ord == Greater,
                    _ => ord != Less,
                }))
            }
            In => match &r {
                Value::List(items) => Ok(Value::Bool(items.iter().any(|x| x.equals(&l)))),
                Value::Str(s) => match &l {
                    Value::Str(sub) => Ok(Value::Bool(s.contains(sub.as_ref()))),
                    other => {
                        Err(RuntimeError::new(format!("cannot look for a {} in a string", other.type_name()), span))
                    }
                },
                Value::Record(fields) => match &l {
                    Value::Str(k) => Ok(Value::Bool(fields.contains_key(k.as_ref()))),
                    other => {
                        Err(RuntimeError::new(format!("record keys are strings, not {}", other.type_name()), span))
                    }
                },
                Value::Range(a, b) => match &l {
                    Value::Num(n) => Ok(Value::Bool(n.fract() == 0.0 && *n >= *a as f64 && *n < *b as f64)),
                    _ => Ok(Value::Bool(false)),
                },
                other => Err(RuntimeError::new(format!("cannot use `in` with a {}", other.type_name()), span)
                    .code(crate::Code::Type)
                    .help("`x in xs` works on lists, strings, records and ranges")),
            },
            Range => match (&l, &r) {
                (Value::Num(a), Value::Num(b))
                    if a.fract() == 0.0 && b.fract() == 0.0 && a.abs() < 9e15 && b.abs() < 9e15 =>
                {
                    Ok(Value::Range(*a as i64, *b as i64))
                }
                _ => Err(RuntimeError::new(
                    format!("a range needs two whole numbers, found {} and {}", l.to_repr(), r.to_repr()),
                    span,
                )
                .code(crate::Code::Type)),
            },
            And | Or => Err(RuntimeError::new("internal: and/or are short-circuited", span)),
            Add | Sub | Mul | Div | Rem | Pow => match (&l, &r) {
                (Value::Num(a), Value::Num(b)) => Ok(Value::Num(num_op(op, *a, *b))),
                (Value::Str(a), Value::Str(b)) if op == Add => {
                    if a.len() + b.len() > crate::value::MAX_STRING_BYTES {
                        return Err(too_large("string", a.len() + b.len(), crate::value::MAX_STRING_BYTES, span));
                    }
                    Ok(Value::str(format!("{a}{b}")))
                }
                (Value::List(a), Value::List(b)) if op == Add => {
                    if a.len() + b.len() > crate::value::MAX_LIST_ITEMS {
                        return Err(too_large("list", a.len() + b.len(), crate::value::MAX_LIST_ITEMS, span));
                    }
                    let mut v = a.as_ref().clone();
                    v.extend(b.iter().cloned());
                    Ok(Value::list(v))
                }
                (Value::Tensor(a), Value::Tensor(b)) => Ok(Value::tensor(tensor_op(op, a, b, span)?)),
                (Value::Tensor(a), Value::Num(b)) => {
                    let b = ArrayD::from_elem(vec![], *b as f32);
                    Ok(Value::tensor(tensor_op(op, a, &b, span)?))
                }
                (Value::Num(a), Value::Tensor(b)) => {
                    let a = ArrayD::from_elem(vec![], *a as f32);
                    Ok(Value::tensor(tensor_op(op, &a, b, span)?))
                }
                _ => Err(type_err(op, &l, &r, span)),
            },
        }
    }
}
