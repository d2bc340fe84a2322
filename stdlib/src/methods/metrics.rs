//! Metrics over language-model outputs: probabilities, logit differences,
//! KL divergence and accuracy. Each takes logits as [V] (one row), [N, V]
//! or [N, T, V] (the last position of each row is read) and returns a
//! number for one row, or one number per row.

use assay_interpreter::{Bound, Name, Tensor, ToolError, Type, Value};
use ndarray::{Array2, ArrayD, Axis, Ix2};

use crate::core::declare::{tool, ToolCtx, ToolResult};
use crate::core::kinds::TokenIds;

/// The one rule for what a metric returns, in every tool that calls one: a
/// finite number (a NaN or an infinity would poison every comparison and
/// mean after it, so it is an error that says so).
pub(crate) fn metric_number(v: Value, arg: Name) -> Result<f64, ToolError> {
    match v {
        Value::Num(x) if x.is_finite() => Ok(x),
        Value::Num(x) => Err(ToolError::arg(arg, format!("the metric returned {x}"))
            .help("a metric must give a finite number for every run, e.g. a logit difference")),
        other => {
            Err(ToolError::arg(arg, format!("the metric must return a number, it returned a {}", other.type_name())))
        }
    }
}

/// Logits as [rows, V]: [V] is one row; [N, T, V] keeps the last position.
pub(crate) fn rows(x: &Bound<Tensor>) -> Result<Array2<f32>, ToolError> {
    let t: &Tensor = x;
    let t: ArrayD<f32> = match t.ndim() {
        1 => t.to_array().insert_axis(Axis(0)),
        2 => t.to_array(),
        3 => {
            let last = t.shape()[1].checked_sub(1).ok_or_else(|| x.error("the logits have no positions"))?;
            t.index_axis(Axis(1), last).to_owned()
        }
        r => {
            return Err(x
                .error(format!("logits must be [V], [N, V] or [N, T, V], found rank {r}"))
                .help("pass `out.logits` from run() or patch()"))
        }
    };
    t.into_dimensionality::<Ix2>().map_err(|e| ToolError::new(e.to_string()))
}

/// Log-probabilities of one row (a stable log-softmax).
pub fn log_softmax(row: &[f32]) -> Vec<f64> {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b)) as f64;
    let z = row.iter().map(|x| (*x as f64 - m).exp()).sum::<f64>().ln() + m;
    row.iter().map(|x| *x as f64 - z).collect()
}

/// One number, or a list of numbers, per row.
fn per_row(xs: Vec<f64>) -> Value {
    if xs.len() == 1 {
        Value::Num(xs[0])
    } else {
        Value::nums(xs)
    }
}

/// Token ids, one for every row (a single id applies to all rows).
fn ids(x: &Bound<TokenIds>, rows: usize, vocab: usize) -> Result<Vec<usize>, ToolError> {
    let v = x.0.clone();
    let v = if v.len() == 1 { vec![v[0]; rows] } else { v };
    if v.len() != rows {
        return Err(x.error(format!("give one token id, or one per row ({rows}), not {}", v.len())));
    }
    v.into_iter()
        .map(|id| {
            if id < 0.0 || id.fract() != 0.0 || id as usize >= vocab {
                Err(x.error(format!("{id} is not a token id (0..{vocab})")))
            } else {
                Ok(id as usize)
            }
        })
        .collect()
}

tool! {
    /// Probabilities from logits over the last axis (any shape: [V], [N, V], [N, T, V]).
    ///
    /// ```assay
    /// let p = softmax(tensor([0, 0, log(2)]))
    /// assert round(p[2], digits: 3) == 0.5
    /// ```
    softmax in Metrics -> Type::Tensor;
    {
        /// logits
        logits: Tensor,
    }
    softmax
}

fn softmax(p: softmax::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let t = p.logits.clone();
    if t.ndim() == 0 {
        return Err(p.logits.error("softmax needs at least one axis"));
    }
    let mut out = t.to_array();
    let last = out.ndim() - 1;
    for mut lane in out.lanes_mut(Axis(last)) {
        let row: Vec<f32> = lane.iter().copied().collect();
        for (o, l) in lane.iter_mut().zip(log_softmax(&row)) {
            *o = l.exp() as f32;
        }
    }
    Ok(Value::tensor(out))
}

tool! {
    /// logit[a] - logit[b] at the last position: the standard patching metric (e.g. indirect object
    /// minus subject). One number for one row, a list for several; `a` and `b` are token ids, one for
    /// all rows or one per row.
    ///
    /// ```assay
    /// assert logit_diff(tensor([[1, 5, 2]]), 1, 2) == 3
    /// assert logit_diff(tensor([[1, 5, 2], [4, 0, 0]]), [1, 0], 2) == [3, 4]
    /// ```
    logit_diff in Metrics -> Type::OneOf(vec![Type::Num, Type::list(Type::Num)]);
    {
        /// [V], [N, V] or [N, T, V]
        logits: Tensor,
        /// token id(s) counted positively
        a: TokenIds,
        /// token id(s) counted negatively
        b: TokenIds,
    }
    logit_diff
}

fn logit_diff(p: logit_diff::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let l = rows(&p.logits)?;
    let (n, v) = l.dim();
    let (x, y) = (ids(&p.a, n, v)?, ids(&p.b, n, v)?);
    Ok(per_row((0..n).map(|r| (l[[r, x[r]]] - l[[r, y[r]]]) as f64).collect()))
}

tool! {
    /// The probability of token(s) at the last position (softmax of the logits).
    ///
    /// ```assay
    /// assert round(prob(tensor([0, 0, log(2)]), 2), digits: 6) == 0.5
    /// ```
    prob in Metrics -> Type::OneOf(vec![Type::Num, Type::list(Type::Num)]);
    {
        /// [V], [N, V] or [N, T, V]
        logits: Tensor,
        /// token id, one for all rows or one per row
        token: TokenIds,
    }
    prob
}

fn prob(p: prob::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let l = rows(&p.logits)?;
    let (n, v) = l.dim();
    let t = ids(&p.token, n, v)?;
    Ok(per_row(
        (0..n)
            .map(|r| {
                let row: Vec<f32> = l.row(r).to_vec();
                log_softmax(&row)[t[r]].exp()
            })
            .collect(),
    ))
}

tool! {
    /// KL divergence KL(P || Q) in nats between the next-token distributions of two runs (softmax of
    /// logits `p` and `q`, last position), per row. 0 when the patched run predicts exactly as the
    /// reference.
    ///
    /// ```assay
    /// assert kl(tensor([1, 2, 3]), tensor([1, 2, 3])) == 0
    /// assert kl(tensor([0, 0]), tensor([0, log(3)])) > 0.14
    /// ```
    kl in Metrics -> Type::OneOf(vec![Type::Num, Type::list(Type::Num)]);
    {
        /// reference logits
        p: Tensor,
        /// logits compared with it (same shape)
        q: Tensor,
    }
    kl
}

fn kl(p: kl::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let (pr, qr) = (rows(&p.p)?, rows(&p.q)?);
    if pr.dim() != qr.dim() {
        return Err(p.q.error(format!("`q` is {:?}, `p` is {:?}: they must match", qr.dim(), pr.dim())));
    }
    let q = qr;
    Ok(per_row(
        (0..pr.nrows())
            .map(|r| {
                let lp = log_softmax(&pr.row(r).to_vec());
                let lq = log_softmax(&q.row(r).to_vec());
                lp.iter().zip(&lq).map(|(x, y)| x.exp() * (x - y)).sum::<f64>().max(0.0)
            })
            .collect(),
    ))
}

tool! {
    /// The fraction of rows whose most likely next token (argmax at the last position) is the target.
    ///
    /// ```assay
    /// assert accuracy(tensor([[0, 9, 1], [5, 0, 0]]), [1, 2]) == 0.5
    /// ```
    accuracy in Metrics -> Type::Num;
    {
        /// [V], [N, V] or [N, T, V]
        logits: Tensor,
        /// target token id(s), one per row
        targets: TokenIds,
    }
    accuracy
}

fn accuracy(p: accuracy::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let l = rows(&p.logits)?;
    let (n, v) = l.dim();
    let t = ids(&p.targets, n, v)?;
    let right = (0..n)
        .filter(|r| {
            let row = l.row(*r);
            let best = row.iter().enumerate().fold(0, |b, (j, x)| if *x > row[b] { j } else { b });
            best == t[*r]
        })
        .count();
    Ok(Value::Num(right as f64 / n.max(1) as f64))
}
