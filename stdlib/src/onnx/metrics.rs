//! Metrics over language-model outputs: probabilities, logit differences,
//! KL divergence and accuracy. Each takes logits as [V] (one row), [N, V]
//! or [N, T, V] (the last position of each row is read) and returns a
//! number for one row, or one number per row.

use assay_interpreter::{Args, Category, Registry, Signature, ToolCtx, ToolError, Type, Value};
use ndarray::{Array2, ArrayD, Axis, Ix2};

use crate::core::FnTool;

/// Logits as [rows, V]: [V] is one row; [N, T, V] keeps the last position.
pub fn rows(a: &Args, i: &str) -> Result<Array2<f32>, ToolError> {
    let t = a.tensor(i)?;
    let t: ArrayD<f32> = match t.ndim() {
        1 => t.to_array().insert_axis(Axis(0)),
        2 => t.to_array(),
        3 => {
            let last = t.shape()[1].checked_sub(1).ok_or_else(|| ToolError::arg(i, "the logits have no positions"))?;
            t.index_axis(Axis(1), last).to_owned()
        }
        r => {
            return Err(ToolError::arg(i, format!("logits must be [V], [N, V] or [N, T, V], found rank {r}"))
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
fn ids(a: &Args, i: &str, rows: usize, vocab: usize) -> Result<Vec<usize>, ToolError> {
    let v = a.numbers(i)?;
    let v = if v.len() == 1 { vec![v[0]; rows] } else { v };
    if v.len() != rows {
        return Err(ToolError::arg(i, format!("give one token id, or one per row ({rows}), not {}", v.len())));
    }
    v.into_iter()
        .map(|x| {
            if x < 0.0 || x.fract() != 0.0 || x as usize >= vocab {
                Err(ToolError::arg(i, format!("{x} is not a token id (0..{vocab})")))
            } else {
                Ok(x as usize)
            }
        })
        .collect()
}

fn softmax_sig() -> Signature {
    Signature::new(
        "softmax",
        Category::Metrics,
        "Probabilities from logits over the last axis (any shape: [V], [N, V], [N, T, V]).",
    )
    .param("logits", Type::Tensor, "logits")
    .returns(Type::Tensor)
    .example("let p = softmax(tensor([0, 0, log(2)]))\nassert round(p[2], digits: 3) == 0.5")
}
fn softmax(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let t = a.tensor("logits")?;
    if t.ndim() == 0 {
        return Err(ToolError::arg("logits", "softmax needs at least one axis"));
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

fn logit_diff_sig() -> Signature {
    Signature::new("logit_diff", Category::Metrics, "logit[a] - logit[b] at the last position: the standard patching metric (e.g. indirect object minus subject). One number for one row, a list for several; `a` and `b` are token ids, one for all rows or one per row.")
        .param("logits", Type::Tensor, "[V], [N, V] or [N, T, V]")
        .param("a", Type::OneOf(vec![Type::Num, Type::list(Type::Num)]), "token id(s) counted positively")
        .param("b", Type::OneOf(vec![Type::Num, Type::list(Type::Num)]), "token id(s) counted negatively")
        .returns(Type::OneOf(vec![Type::Num, Type::list(Type::Num)]))
        .example("assert logit_diff(tensor([[1, 5, 2]]), 1, 2) == 3\nassert logit_diff(tensor([[1, 5, 2], [4, 0, 0]]), [1, 0], 2) == [3, 4]")
}
fn logit_diff(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let l = rows(a, "logits")?;
    let (n, v) = l.dim();
    let (x, y) = (ids(a, "a", n, v)?, ids(a, "b", n, v)?);
    Ok(per_row((0..n).map(|r| (l[[r, x[r]]] - l[[r, y[r]]]) as f64).collect()))
}

fn prob_sig() -> Signature {
    Signature::new(
        "prob",
        Category::Metrics,
        "The probability of token(s) at the last position (softmax of the logits).",
    )
    .param("logits", Type::Tensor, "[V], [N, V] or [N, T, V]")
    .param("token", Type::OneOf(vec![Type::Num, Type::list(Type::Num)]), "token id, one for all rows or one per row")
    .returns(Type::OneOf(vec![Type::Num, Type::list(Type::Num)]))
    .example("assert round(prob(tensor([0, 0, log(2)]), 2), digits: 6) == 0.5")
}
fn prob(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let l = rows(a, "logits")?;
    let (n, v) = l.dim();
    let t = ids(a, "token", n, v)?;
    Ok(per_row(
        (0..n)
            .map(|r| {
                let row: Vec<f32> = l.row(r).to_vec();
                log_softmax(&row)[t[r]].exp()
            })
            .collect(),
    ))
}

fn kl_sig() -> Signature {
    Signature::new("kl", Category::Metrics, "KL divergence KL(P || Q) in nats between the next-token distributions of two runs (softmax of logits `p` and `q`, last position), per row. 0 when the patched run predicts exactly as the reference.")
        .param("p", Type::Tensor, "reference logits")
        .param("q", Type::Tensor, "logits compared with it (same shape)")
        .returns(Type::OneOf(vec![Type::Num, Type::list(Type::Num)]))
        .example("assert kl(tensor([1, 2, 3]), tensor([1, 2, 3])) == 0\nassert kl(tensor([0, 0]), tensor([0, log(3)])) > 0.14")
}
fn kl(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let (p, q) = (rows(a, "p")?, rows(a, "q")?);
    if p.dim() != q.dim() {
        return Err(ToolError::arg("q", format!("`q` is {:?}, `p` is {:?}: they must match", q.dim(), p.dim())));
    }
    Ok(per_row(
        (0..p.nrows())
            .map(|r| {
                let lp = log_softmax(&p.row(r).to_vec());
                let lq = log_softmax(&q.row(r).to_vec());
                lp.iter().zip(&lq).map(|(x, y)| x.exp() * (x - y)).sum::<f64>().max(0.0)
            })
            .collect(),
    ))
}

fn accuracy_sig() -> Signature {
    Signature::new(
        "accuracy",
        Category::Metrics,
        "The fraction of rows whose most likely next token (argmax at the last position) is the target.",
    )
    .param("logits", Type::Tensor, "[V], [N, V] or [N, T, V]")
    .param("targets", Type::OneOf(vec![Type::Num, Type::list(Type::Num)]), "target token id(s), one per row")
    .returns(Type::Num)
    .example("assert accuracy(tensor([[0, 9, 1], [5, 0, 0]]), [1, 2]) == 0.5")
}
fn accuracy(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let l = rows(a, "logits")?;
    let (n, v) = l.dim();
    let t = ids(a, "targets", n, v)?;
    let right = (0..n)
        .filter(|r| {
            let row = l.row(*r);
            let best = row.iter().enumerate().fold(0, |b, (j, x)| if *x > row[b] { j } else { b });
            best == t[*r]
        })
        .count();
    Ok(Value::Num(right as f64 / n.max(1) as f64))
}

pub(crate) fn register(r: &mut Registry) {
    for (sig, f) in [
        (softmax_sig as fn() -> Signature, softmax as crate::core::ToolFn),
        (logit_diff_sig, logit_diff),
        (prob_sig, prob),
        (kl_sig, kl),
        (accuracy_sig, accuracy),
    ] {
        r.register(FnTool::new(sig, f));
    }
}
