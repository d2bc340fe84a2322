//! The residual stream around an attention block, found by the graph's
//! structure. From the output projection forward to the first addition of
//! a tensor the block itself was computed from: that is the residual add,
//! and the tensor is the stream the block reads. On the way there:
//!
//! - an addition of a tensor the block was *not* computed from (and that
//!   was not computed from the block) is a parallel branch: GPT-NeoX, Phi
//!   and Falcon add attention and MLP to the same stream together
//!   (`x + attn(ln1(x)) + mlp(ln2(x))`), and that branch is the layer's MLP;
//! - any op other than a bias, a cast, a reshape or dropout means the
//!   block's output is transformed before the stream gets it (Gemma-2's
//!   sandwich norm), which is recorded: what a head writes is then not what
//!   the stream receives.
//!
//! After the residual add comes the MLP's: the stream (pre-norm, possibly
//! flattened to [N*T, D] around the MLP as OPT does) or its norm (post-norm,
//! as BERT and OPT-350m) plus the MLP output.

use std::collections::{HashSet, VecDeque};

use crate::onnx::attention::{Index, MAX_WALK};
use crate::onnx::proto::NodeProto;

/// The most tensors an ancestry search visits (a whole large graph).
const MAX_ANCESTORS: usize = 2_000_000;

/// What the graph shows around one block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Streams {
    /// The stream the block reads and adds its output to.
    pub residual_in: Option<String>,
    /// The stream after the block's layer (attention and MLP).
    pub residual: Option<String>,
    /// The layer's MLP output as it is added to the stream.
    pub mlp: Option<String>,
    /// Attention and MLP are added to the stream together.
    pub parallel: bool,
    /// Why the block's output is not what the stream finally receives
    /// (none where it is): a norm between (sandwich norms), or post-norm
    /// layers.
    pub indirect: Option<String>,
}

/// Every tensor `t` is computed from as data, `t` included: shapes
/// (`Shape`, `Size`) and the shape operands of reshapes and expands are not
/// data.
pub(crate) fn ancestors(idx: &Index, t: &str) -> HashSet<String> {
    let mut seen: HashSet<String> = HashSet::from([t.to_string()]);
    let mut todo = vec![t.to_string()];
    while let Some(x) = todo.pop() {
        if seen.len() > MAX_ANCESTORS {
            break;
        }
        let Some(n) = idx.producer(&x) else { continue };
        for i in data_inputs(n) {
            if !i.is_empty() && !idx.is_const(i) && seen.insert(i.clone()) {
                todo.push(i.clone());
            }
        }
    }
    seen
}

/// The inputs of `n` whose values (not only shapes) reach its output.
pub(crate) fn data_inputs(n: &NodeProto) -> &[String] {
    let first = n.input.get(..1).unwrap_or(&[]);
    match n.op_type() {
        "Shape" | "Size" | "ConstantOfShape" | "Range" | "EyeLike" => &[],
        "Reshape" | "Expand" | "CastLike" | "Tile" | "Slice" | "Squeeze" | "Unsqueeze" | "Pad" | "Resize" => first,
        _ => &n.input,
    }
}

/// Ops that pass a component's output on unchanged (up to a constant
/// bias): it still adds to the stream what the component wrote.
fn passes(n: &NodeProto, idx: &Index, from: &str) -> bool {
    let first = n.input.first().is_some_and(|x| x == from);
    match n.op_type() {
        "Cast" | "Identity" | "Dropout" | "Reshape" | "Squeeze" | "Unsqueeze" => first,
        "Add" => n.input.iter().filter(|x| *x != from).all(|x| idx.is_const(x)),
        _ => false,
    }
}

/// `t` followed through a single consumer that only casts or reshapes it;
/// with whether a reshape was passed.
fn through_layout(idx: &Index, t: &str) -> (String, bool) {
    let mut t = t.to_string();
    let mut reshaped = false;
    for _ in 0..MAX_WALK {
        let next = idx.data_consumers(&t);
        let [c] = next.as_slice() else { break };
        if !matches!(c.op_type(), "Cast" | "Identity" | "Reshape") || c.input.first() != Some(&t) {
            break;
        }
        reshaped |= c.op_type() == "Reshape";
        match c.output.first() {
            Some(o) => t = o.clone(),
            None => break,
        }
    }
    (t, reshaped)
}

/// The residual add after a block whose projection gives `projected`:
/// (the add, the input it came in by, the parallel branch added on the way,
/// the first op on the way that changes the block's output).
fn residual_add<'a>(
    idx: &Index<'a>,
    projected: &str,
    before: &HashSet<String>,
) -> Option<(&'a NodeProto, String, Option<String>, Option<String>)> {
    // Breadth first from the projection, each tensor with the first op on
    // its way that changed the block's output, and any parallel branch.
    let mut queue: VecDeque<(String, Option<String>, Option<String>)> =
        VecDeque::from([(projected.to_string(), None, None)]);
    let mut seen: HashSet<String> = HashSet::from([projected.to_string()]);
    let mut steps = 0;
    while let Some((t, changed, branch)) = queue.pop_front() {
        for c in idx.data_consumers(&t) {
            steps += 1;
            if steps > MAX_WALK * 4 {
                return None;
            }
            let Some(out) = c.output.first().filter(|o| !o.is_empty()) else { continue };
            let mut next_branch = branch.clone();
            if matches!(c.op_type(), "Add" | "Sum") {
                let others: Vec<&String> =
                    c.input.iter().filter(|x| **x != t && !x.is_empty() && !idx.is_const(x)).collect();
                if let [o] = others.as_slice() {
                    if before.contains(o.as_str()) {
                        return Some((c, t.clone(), branch, changed));
                    }
                    // Added from outside the block and not computed from
                    // it: a parallel branch.
                    if !seen.contains(o.as_str()) && !ancestors(idx, o).contains(projected) {
                        if next_branch.is_some() {
                            return None;
                        }
                        next_branch = Some((*o).clone());
                    }
                }
            }
            let next_changed = changed.clone().or_else(|| {
                let plain = passes(c, idx, &t) || next_branch.is_some() && next_branch != branch;
                (!plain).then(|| c.op_type().to_string())
            });
            if seen.insert(out.clone()) {
                queue.push_back((out.clone(), next_changed, next_branch));
            }
        }
    }
    None
}

/// The residual streams and MLP output around a block whose projection
/// gives `projected`.
pub(crate) fn streams(idx: &Index, projected: &str) -> Streams {
    let before = ancestors(idx, projected);
    let Some((add, came, branch, changed)) = residual_add(idx, projected, &before) else {
        return Streams::default();
    };
    let residual_in = add.input.iter().find(|x| **x != came && !x.is_empty()).cloned();
    let indirect = changed.map(|op| {
        format!("the attention output passes a `{op}` node before it is added to the residual stream (a norm between, as Gemma-2's sandwich norms), so what a head writes is not what the stream receives")
    });
    let Some(mid) = add.output.first().cloned() else {
        return Streams { residual_in, indirect, ..Streams::default() };
    };
    if let Some(mlp) = branch {
        // Parallel: the stream after the layer is this sum.
        let (residual, _) = through_layout(idx, &mid);
        return Streams { residual_in, residual: Some(residual), mlp: Some(mlp), parallel: true, indirect };
    }
    let (mid, flattened) = through_layout(idx, &mid);
    // The MLP's residual add reads the stream (pre-norm) or its norm
    // (post-norm, as BERT), and the MLP output.
    let second = |s: &str| {
        idx.data_consumers(s).into_iter().find(|c| {
            c.op_type() == "Add"
                && c.input.iter().filter(|x| *x != s).all(|x| !idx.is_const(x))
                && c.input.iter().any(|x| x != s)
        })
    };
    // A stream flattened around the MLP is shaped back after it.
    let back = |sum: &str, flattened: bool| if flattened { through_layout(idx, sum).0 } else { sum.to_string() };
    if let Some(a2) = second(&mid) {
        let mlp = a2.input.iter().find(|x| **x != mid).cloned();
        let residual = a2.output.first().map(|o| back(o, flattened));
        return Streams { residual_in, residual, mlp, parallel: false, indirect };
    }
    let norm = idx.data_consumers(&mid).into_iter().find(|c| c.op_type() == "LayerNormalization");
    let Some(n1) = norm.and_then(|n| n.output.first().cloned()) else {
        return Streams { residual_in, indirect, ..Streams::default() };
    };
    let (n1, flattened) = through_layout(idx, &n1);
    let Some(a2) = second(&n1) else { return Streams { residual_in, indirect, ..Streams::default() } };
    let mlp = a2.input.iter().find(|x| **x != n1).cloned();
    let sum = back(a2.output.first().map_or("", String::as_str), flattened);
    let after = idx
        .data_consumers(&sum)
        .into_iter()
        .find(|c| c.op_type() == "LayerNormalization")
        .and_then(|c| c.output.first().cloned())
        .unwrap_or(sum);
    let post = "post-norm layers: the stream is normalised (LayerNorm) after each block's output is added, so what a head writes reaches the logits through every later norm";
    Streams { residual_in, residual: Some(after), mlp, parallel: false, indirect: indirect.or(Some(post.to_string())) }
}
