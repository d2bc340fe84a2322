//! Parameter kinds that several tools share, typed: what a body gets is
//! already the thing it works on (numbers or a tensor, a function, tensor
//! names), converted once at binding with one error wording, instead of an
//! untyped `Value` or `Arg` each body takes apart itself.
//!
//! - [`Numeric`]: a number, numbers (a list or range) or a tensor;
//! - [`Function`]: a function value (a name or `x => ...`);
//! - [`TensorNames`]: a tensor name or glob, or a list of them;
//! - [`Images`]: one image or a list of them, remembering which;
//! - [`TokenIds`]: one token id or one per row;
//! - [`Inputs`]: a model's inputs as the script gave them (texts, a record
//!   of tensors, a tensor), resolved against the model by the body.

use std::sync::Arc;

use assay_interpreter::{Arg, Args, Image, Tensor, ToolError, Type, Value};

use super::declare::{bound_by_name, Param};

/// A number, numbers (a list or range), or a tensor.
#[derive(Debug, Clone)]
pub(crate) enum Numeric {
    Num(f64),
    Numbers(Vec<f64>),
    Tensor(Tensor),
}

/// A number, a list or range of numbers, or a tensor.
pub(crate) fn numeric() -> Type {
    Type::OneOf(vec![Type::Num, Type::list(Type::Num), Type::Range, Type::Tensor])
}

impl Param for Numeric {
    bound_by_name!();
    fn ty() -> Type {
        numeric()
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        match a.get(name) {
            Value::Num(n) => Ok(Numeric::Num(*n)),
            Value::Tensor(t) => Ok(Numeric::Tensor(t.clone())),
            _ => a.numbers(name).map(Numeric::Numbers),
        }
    }
}

impl Numeric {
    /// `f` applied to the number, each number, or each tensor element
    /// (in float32, as tensors hold them); the result has the given shape.
    pub(crate) fn map(&self, f: impl Fn(f64) -> f64) -> Value {
        match self {
            Numeric::Num(n) => Value::Num(f(*n)),
            Numeric::Numbers(xs) => Value::nums(xs.iter().map(|x| f(*x))),
            Numeric::Tensor(t) => Value::tensor(t.view().mapv(|x| f(x as f64) as f32)),
        }
    }

    /// All the numbers, flat (a tensor's in row-major order).
    pub(crate) fn numbers(&self) -> Vec<f64> {
        match self {
            Numeric::Num(n) => vec![*n],
            Numeric::Numbers(xs) => xs.clone(),
            Numeric::Tensor(t) => t.iter().map(|x| *x as f64).collect(),
        }
    }
}

/// A function value: a tool or script function by name, or `x => ...`.
/// Reads as the `Value` it is, so `ctx.call(&p.f, ...)` takes it.
#[derive(Debug, Clone)]
pub(crate) struct Function(Value);

impl Param for Function {
    bound_by_name!();
    fn ty() -> Type {
        Type::Func
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        a.func(name).map(|f| Function(f.clone()))
    }
}

impl std::ops::Deref for Function {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.0
    }
}

/// Every item of a list argument, as `pick` takes it; the first it does
/// not take is the argument's error: `wrong` and the item's type.
pub(crate) fn each<T>(
    arg: &Arg,
    items: &[Value],
    pick: impl Fn(&Value) -> Option<T>,
    wrong: &str,
) -> Result<Vec<T>, ToolError> {
    items.iter().map(|v| pick(v).ok_or_else(|| arg.error(format!("{wrong} {}", v.type_name())))).collect()
}

/// Tensor names or glob patterns (`"/layers.*/attn/out"`), one or a list;
/// matched against a model's tensors by `select_names`.
#[derive(Debug, Clone)]
pub(crate) struct TensorNames(pub(crate) Vec<String>);

impl Param for TensorNames {
    bound_by_name!();
    fn ty() -> Type {
        Type::OneOf(vec![Type::Str, Type::list(Type::Str)])
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        let arg = a.arg(name);
        match a.get(name) {
            Value::Str(s) => Ok(TensorNames(vec![s.to_string()])),
            Value::List(items) => each(
                &arg,
                items,
                |v| match v {
                    Value::Str(s) => Some(s.to_string()),
                    _ => None,
                },
                "tensor names are strings, found a",
            )
            .map(TensorNames),
            other => {
                Err(arg.error(format!("expected a tensor name or a list of names, found a {}", other.type_name())))
            }
        }
    }
}

/// One image or a list of images; `one` remembers which, so a tool can
/// answer in the same form.
#[derive(Debug, Clone)]
pub(crate) struct Images {
    pub(crate) images: Vec<Arc<Image>>,
    pub(crate) one: bool,
}

impl Param for Images {
    bound_by_name!();
    fn ty() -> Type {
        Type::OneOf(vec![Type::Image, Type::list(Type::Image)])
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        let arg = a.arg(name);
        match a.get(name) {
            Value::Image(im) => Ok(Images { images: vec![im.clone()], one: true }),
            Value::List(items) => each(
                &arg,
                items,
                |v| match v {
                    Value::Image(im) => Some(im.clone()),
                    _ => None,
                },
                "expected images, found a",
            )
            .map(|images| Images { images, one: false }),
            other => Err(arg.error(format!("expected an image or a list of images, found a {}", other.type_name()))),
        }
    }
}

/// Token ids: one for every row, or one per row.
#[derive(Debug, Clone)]
pub(crate) struct TokenIds(pub(crate) Vec<f64>);

impl Param for TokenIds {
    bound_by_name!();
    fn ty() -> Type {
        Type::OneOf(vec![Type::Num, Type::list(Type::Num)])
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        a.numbers(name).map(TokenIds)
    }
}

/// A model's inputs as the script gave them: a text or texts (tokenized
/// by the model's tokenizer), a record of named tensors, or one tensor.
/// Which of these a model takes is known only with the model, so the body
/// resolves them (`feeds_value`), blaming this parameter.
#[derive(Debug, Clone)]
pub(crate) struct Inputs(pub(crate) Value);

impl Param for Inputs {
    bound_by_name!();
    fn ty() -> Type {
        Type::Any
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        Ok(Inputs(a.get(name).clone()))
    }
}

impl std::ops::Deref for Inputs {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.0
    }
}
