//! `grad`: gradients of a metric with respect to any tensors of a model,
//! by the backward graph `onnx::grad` appends (standard ONNX operators, so
//! ONNX Runtime runs it like the model).

use std::collections::BTreeMap;

use assay_interpreter::{Bound, Name, Tensor, ToolCtx, ToolError, Type, Value};
use ndarray::ArrayD;

use crate::core::declare::{tool, ToolResult};
use crate::core::kinds::{Inputs, TensorNames};
use crate::onnx::error::ModelError;
use crate::onnx::handle::{feeds, select_names, ModelHandle};

tool! {
    /// Gradients of a metric. Computed in ONNX Runtime on a backward graph of standard ONNX operators
    /// that Assay appends to the model (docs/gradients.md). The metric is an element
    /// of a tensor, or the difference of two, in each input row: `{tensor, index, minus}` with `index`
    /// (and `minus`) the position after the batch axis (negative counts from the end), e.g. a logit
    /// difference `{tensor: "logits", index: [-1, 42], minus: [-1, 17]}`; `tensor` defaults to the
    /// model's first output. `wrt` names the tensors (names or globs): a graph input (pixels) or any
    /// intermediate tensor. Returns {value: [N] the metric per row, grads: {name: tensor shaped as
    /// it}}. An operator on the way without a rule is refused, naming it and its node.
    ///
    /// ```assay
    /// let m = onnx("fixtures/tiny.onnx")
    /// # z = 2·relu(x + [1, -1, 0.5]): dz[0]/dx is 2 where x + 1 > 0
    /// let g = grad(m, tensor([[1, -2, 3], [-5, 0, 1]]), {tensor: "z", index: [0], minus: [2]}, "x")
    /// assert g.value == tensor([4 - 7, 0 - 3])
    /// assert g.grads.x == tensor([[2, 0, -2], [0, 0, -2]])
    /// ```
    grad in Models -> Type::record();
    {
        /// a model from onnx() or model()
        model: ModelHandle,
        /// a record {input_name: tensor}, one tensor, or text for a language model
        inputs: Inputs,
        /// {tensor, index, minus}: the element (or difference of two) to differentiate
        metric: BTreeMap<String, Value>,
        /// tensor names or globs to differentiate with respect to
        wrt: TensorNames,
    }
    grad
}

/// A position after the batch axis: whole numbers.
fn position(v: &Value, field: &str) -> Result<Vec<i64>, String> {
    let Value::List(xs) = v else { return Err(format!("`{field}` must be a list of whole numbers")) };
    xs.iter()
        .map(|x| match x {
            Value::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => Ok(*n as i64),
            other => Err(format!("`{field}` must hold whole numbers, found {}", other.to_text())),
        })
        .collect()
}

/// A differentiable metric: an element of `tensor` in each input row, or
/// the difference of two (`{tensor, index, minus}`).
pub(crate) struct Metric {
    pub(crate) tensor: String,
    index: Vec<i64>,
    minus: Option<Vec<i64>>,
}

impl Metric {
    /// Reads `{tensor, index, minus}`; `tensor` defaults to the model's
    /// first output. Errors blame the metric argument.
    pub(crate) fn parse(m: &ModelHandle, metric: &Bound<BTreeMap<String, Value>>) -> Result<Metric, ToolError> {
        Metric::from_fields(m, metric, metric.name())
    }

    /// As [`Metric::parse`], from a record's fields; errors blame `arg`.
    pub(crate) fn from_fields(
        m: &ModelHandle,
        metric: &BTreeMap<String, Value>,
        arg: Name,
    ) -> Result<Metric, ToolError> {
        let bad = |msg: String| ToolError::arg(arg, msg).help(METRIC_HELP);
        for k in metric.keys() {
            if !["tensor", "index", "minus"].contains(&k.as_str()) {
                return Err(bad(format!("unknown field `{k}`")));
            }
        }
        let tensor = match metric.get("tensor") {
            Some(Value::Str(s)) => s.to_string(),
            Some(other) => return Err(bad(format!("`tensor` must be a tensor's name, found a {}", other.type_name()))),
            None => m.output_names().into_iter().next().ok_or_else(|| bad("the model has no output".into()))?,
        };
        let index = match metric.get("index") {
            Some(v) => position(v, "index").map_err(bad)?,
            None => return Err(bad("no `index`: the position of the element, after the batch axis".into())),
        };
        let minus = metric.get("minus").filter(|v| !matches!(v, Value::None)).map(|v| position(v, "minus"));
        let minus = minus.transpose().map_err(bad)?;
        if minus.as_ref().is_some_and(|mi| mi.len() != index.len()) {
            return Err(bad("`minus` must have as many axes as `index`".into()));
        }
        Ok(Metric { tensor, index, minus })
    }

    /// The backward pass's seed for `rows` input rows: [K, rank] indices
    /// and [K] weights.
    pub(crate) fn seed(&self, rows: usize) -> Result<(ArrayD<f32>, ArrayD<f32>), ToolError> {
        let rank = self.index.len() + 1;
        let mut idx: Vec<f32> = Vec::new();
        let mut w: Vec<f32> = Vec::new();
        for r in 0..rows {
            for (at, sign) in std::iter::once((&self.index, 1.0)).chain(self.minus.iter().map(|mi| (mi, -1.0))) {
                idx.push(r as f32);
                idx.extend(at.iter().map(|v| *v as f32));
                w.push(sign);
            }
        }
        let k = w.len();
        Ok((
            ArrayD::from_shape_vec(vec![k, rank], idx).map_err(|e| ToolError::new(e.to_string()))?,
            ArrayD::from_shape_vec(vec![k], w).map_err(|e| ToolError::new(e.to_string()))?,
        ))
    }

    /// The metric of each row of the metric tensor `t`. Errors blame `arg`.
    pub(crate) fn values(&self, t: &ArrayD<f32>, arg: Name) -> Result<Vec<f64>, ToolError> {
        let tensor = &self.tensor;
        let bad = |msg: String| ToolError::arg(arg, msg).help(METRIC_HELP);
        if t.ndim() != self.index.len() + 1 {
            return Err(bad(format!(
                "`{tensor}` has {} axes, so `index` needs {} after the batch axis, not {}",
                t.ndim(),
                numbers(t.ndim().saturating_sub(1)),
                self.index.len()
            )));
        }
        let at = |r: usize, pos: &[i64]| -> Result<f64, ToolError> {
            let mut full = vec![r];
            for (d, v) in pos.iter().enumerate() {
                let n = t.shape()[d + 1] as i64;
                let i = if *v < 0 { v + n } else { *v };
                if !(0..n).contains(&i) {
                    return Err(bad(format!("position {v} is outside axis {} of `{tensor}` (size {n})", d + 1)));
                }
                full.push(i as usize);
            }
            Ok(t[ndarray::IxDyn(&full)] as f64)
        };
        (0..t.shape()[0])
            .map(|r| {
                let v = at(r, &self.index)?;
                Ok(match &self.minus {
                    Some(mi) => v - at(r, mi)?,
                    None => v,
                })
            })
            .collect()
    }
}

fn numbers(n: usize) -> String {
    if n == 1 {
        "1 number".into()
    } else {
        format!("{n} numbers")
    }
}

const METRIC_HELP: &str = "metric: {tensor: \"logits\", index: [-1, 42], minus: [-1, 17]}";

/// A gradient run's error, blamed on the arguments, with where to look
/// when an operator was refused.
pub(crate) fn grad_error(m: &ModelHandle, e: ModelError, inputs: Name, wrt: Name) -> ToolError {
    let refused = e.to_string().contains("no gradient through");
    let err = m.blame(e, inputs, wrt);
    if refused {
        err.help("docs/gradients.md lists the operators with rules; a tensor after this operator can still be differentiated (wrt); dcm falls back to SPSA on such a graph")
    } else {
        err
    }
}

fn grad(p: grad::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let f = feeds(&m, &p.inputs)?;
    let wrt = select_names(&m, &p.wrt)?;
    let metric = Metric::parse(&m, &p.metric)?;
    let rows = f.first().and_then(|(_, a)| a.shape().first().copied()).unwrap_or(1);
    let mut out = match m.grad(f.clone(), &wrt, &metric.tensor, metric.seed(rows)?) {
        Ok(out) => out,
        Err(e) => {
            // A metric that names no element of its tensor fails inside the
            // backward graph; say so about the metric instead.
            if let Ok(t) = m.capture(f, std::slice::from_ref(&metric.tensor)) {
                if let Some(t) = t.get(&metric.tensor) {
                    metric.values(t, p.metric.name())?;
                }
            }
            return Err(grad_error(&m, e, p.inputs.name(), p.wrt.name()));
        }
    };
    let t = out.remove(&metric.tensor).ok_or_else(|| ToolError::new("the run gave no metric tensor"))?;
    let values = metric.values(&t, p.metric.name())?;
    let grads = wrt
        .iter()
        .map(|name| {
            let g = out
                .remove(&crate::onnx::grad::grad_name(name))
                .ok_or_else(|| ToolError::new("no gradient came back"))?;
            Ok((name.clone(), Value::Tensor(Tensor::new(g))))
        })
        .collect::<Result<Vec<_>, ToolError>>()?;
    let value = ArrayD::from_shape_vec(vec![values.len()], values.into_iter().map(|v| v as f32).collect())
        .map_err(|e| ToolError::new(e.to_string()))?;
    Ok(Value::record([("value", Value::Tensor(Tensor::new(value))), ("grads", Value::record(grads))]))
}
