//! Types as the checker knows them: declared by tool parameters and results,
//! inferred for literals and bindings. `Any` is "not known before running";
//! the checker only reports a mismatch when both sides are known.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::value::Value;

#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Any,
    None,
    Bool,
    Num,
    Str,
    List(Box<Type>),
    /// A record, with its fields when they are known.
    Record(Option<Arc<BTreeMap<String, Type>>>),
    Range,
    Tensor,
    Image,
    Func,
    Module,
    /// An opaque tool object of the given kind ("model", "unit", ...).
    Handle(crate::value::HandleKind),
    /// Any of these.
    OneOf(Vec<Type>),
}

impl Type {
    pub fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }
    pub fn record() -> Type {
        Type::Record(None)
    }
    pub fn record_of(fields: &[(&str, Type)]) -> Type {
        Type::Record(Some(Arc::new(fields.iter().map(|(k, t)| (k.to_string(), t.clone())).collect())))
    }
    /// Numbers as a list, range or tensor: what statistics accept.
    pub fn numbers() -> Type {
        Type::OneOf(vec![Type::list(Type::Num), Type::Range, Type::Tensor])
    }
    /// Anything that can be looped over.
    pub fn iterable() -> Type {
        Type::OneOf(vec![Type::list(Type::Any), Type::Range, Type::Tensor, Type::Str, Type::record()])
    }
    pub fn optional(t: Type) -> Type {
        match t {
            Type::OneOf(mut v) => {
                v.push(Type::None);
                Type::OneOf(v)
            }
            t => Type::OneOf(vec![t, Type::None]),
        }
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, Type::Any)
    }

    /// Could a value of static type `actual` be accepted where `self` is expected?
    pub fn accepts(&self, actual: &Type) -> bool {
        match (self, actual) {
            (Type::Any, _) | (_, Type::Any) => true,
            (Type::OneOf(opts), a) => opts.iter().any(|o| o.accepts(a)),
            (e, Type::OneOf(opts)) => opts.iter().any(|o| e.accepts(o)),
            (Type::List(e), Type::List(a)) => e.accepts(a),
            (Type::Record(_), Type::Record(_)) => true,
            (Type::Handle(a), Type::Handle(b)) => a == b,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }

    /// Does this runtime value belong to the type?
    pub fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (Type::Any, _) => true,
            (Type::OneOf(opts), v) => opts.iter().any(|o| o.matches(v)),
            (Type::None, Value::None) => true,
            (Type::Bool, Value::Bool(_)) => true,
            (Type::Num, Value::Num(_)) => true,
            (Type::Str, Value::Str(_)) => true,
            (Type::List(e), Value::List(items)) => items.iter().all(|x| e.matches(x)),
            (Type::Record(_), Value::Record(_)) => true,
            (Type::Range, Value::Range(..)) => true,
            (Type::Tensor, Value::Tensor(_)) => true,
            (Type::Image, Value::Image(_)) => true,
            (Type::Func, Value::Func(_)) => true,
            (Type::Module, Value::Module(_)) => true,
            (Type::Handle(k), Value::Handle(h)) => *k == h.kind(),
            _ => false,
        }
    }

    /// The static type of a value (used for constants and tool defaults).
    pub fn of(v: &Value) -> Type {
        match v {
            Value::None => Type::None,
            Value::Bool(_) => Type::Bool,
            Value::Num(_) => Type::Num,
            Value::Str(_) => Type::Str,
            Value::List(_) => Type::list(Type::Any),
            Value::Record(_) => Type::record(),
            Value::Range(..) => Type::Range,
            Value::Tensor(_) => Type::Tensor,
            Value::Image(_) => Type::Image,
            Value::Func(_) => Type::Func,
            Value::Module(_) => Type::Module,
            Value::Handle(h) => Type::Handle(h.kind()),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Any => write!(f, "any"),
            Type::None => write!(f, "none"),
            Type::Bool => write!(f, "bool"),
            Type::Num => write!(f, "number"),
            Type::Str => write!(f, "string"),
            Type::List(e) if **e == Type::Any => write!(f, "list"),
            Type::List(e) => write!(f, "list of {e}"),
            Type::Record(_) => write!(f, "record"),
            Type::Range => write!(f, "range"),
            Type::Tensor => write!(f, "tensor"),
            Type::Image => write!(f, "image"),
            Type::Func => write!(f, "function"),
            Type::Module => write!(f, "module"),
            Type::Handle(k) => write!(f, "{k}"),
            Type::OneOf(opts) => {
                let names: Vec<String> = opts.iter().map(|t| t.to_string()).collect();
                if names.is_empty() {
                    write!(f, "nothing")
                } else {
                    write!(f, "{}", names.join(" | "))
                }
            }
        }
    }
}
