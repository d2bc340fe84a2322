//! Path patching: a sender component's effect through chosen receivers
//! only, everything else frozen at the target run.

use super::*;
use crate::core::kinds::{Function, Inputs, TensorNames};
use crate::onnx::handle::ModelHandle;

tool! {
    /// Path patching: the effect of one sender component (a [tensor index, part] of `tensors`) that
    /// travels only through chosen receivers. The sender takes its value from the `source` run while
    /// every other component of `tensors` is frozen at its `target` value; with `receivers: "logits"`
    /// the metric is read from that run (the sender's direct effect), otherwise the receivers (tensor
    /// names with `receiver_parts` slices and `receiver_only` pairs, e.g. the value or query inputs of
    /// later heads) are captured there and patched into a clean target run (the effect through them
    /// alone). Returns {effect, patched, clean, source}: effect = metric(patched) - metric(target).
    ///
    /// ```assay
    /// let m = model("planted")
    /// let d = out => logit_diff(out.logits, 0, 3)
    /// let heads = "/layers.*/heads_output_0"
    /// let direct = path_patch(m, tensor([[0, 1, 2]]), tensor([[3, 1, 2]]), heads, [0, 0], d, parts: 2)
    /// let via = path_patch(m, tensor([[0, 1, 2]]), tensor([[3, 1, 2]]), heads, [0, 0], d, parts: 2, receivers: "/layers.1/v_output_0", receiver_parts: 2, receiver_only: [[0, 0]])
    /// assert direct.effect == -2 and via.effect == -4
    /// ```
    path_patch in Interventions -> Type::record();
    {
        /// a model
        model: ModelHandle,
        /// the run to patch into (one example)
        target: Inputs,
        /// the run the sender's value comes from
        source: Inputs,
        /// the components' tensors (names or globs), e.g. every layer's heads
        tensors: TensorNames,
        /// [tensor index, part] of the sender
        sender: Vec<f64>,
        /// outputs => number
        metric: Function,
        /// slices per tensor (e.g. heads per layer)
        parts: usize = 1,
        /// "logits", or receiver tensor names or globs
        receivers: TensorNames [Type::Any] = "logits",
        /// slices per receiver tensor
        receiver_parts: usize = 1,
        /// [receiver tensor index, part] slices (default: all)
        receiver_only: Arg [Type::list(Type::list(Type::Num))] = None,
    }
    path_patch
}

fn path_patch(p: path_patch::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let target = one(&m, &p.target, p.target.name())?;
    let source = one(&m, &p.source, p.source.name())?;
    let names = select_names(&m, &p.tensors)?;
    let metric = p.metric.clone();
    let parts = p.parts.max(1);
    let sender = {
        let xs = p.sender.clone();
        if xs.len() != 2 {
            return Err(p.sender.error("the sender is a pair [tensor index, part]"));
        }
        if xs[0] < 0.0 || xs[0] as usize >= names.len() || xs[1] < 0.0 || xs[1] as usize >= parts {
            return Err(p.sender.error(format!("{xs:?} is out of range: {} tensors of {parts} parts", names.len())));
        }
        xs[0] as usize * parts + xs[1] as usize
    };
    let clean_vals = m.capture(target.clone(), &names).map_err(|e| m.blame(e, p.target.name(), p.tensors.name()))?;
    let src_vals = m.capture(source.clone(), &names).map_err(|e| m.blame(e, p.source.name(), p.tensors.name()))?;
    let comps = split(&names, &clean_vals, parts, p.parts.name())?;
    // Frozen values: the target's everywhere, the source's in the sender's slice.
    let mut frozen = clean_vals.clone();
    let s = &comps[sender];
    {
        let dst = frozen.get_mut(&s.tensor).ok_or_else(|| ToolError::new("sender tensor missing"))?;
        let src = &src_vals[&s.tensor];
        let last = dst.ndim() - 1;
        dst.slice_axis_mut(Axis(last), Slice::from(s.cols.0..s.cols.1))
            .assign(&src.slice_axis(Axis(last), Slice::from(s.cols.0..s.cols.1)));
    }
    let all: Vec<(usize, f32)> = (0..comps.len()).map(|c| (c, 1.0)).collect();
    let want = m.output_names();
    let score = |ctx: &mut dyn ToolCtx, o: &Outputs| call_metric(ctx, &metric, vec![outputs_value(o)], p.metric.name());
    let clean_out = m.run_plain(target.clone(), &want).map_err(|e| m.blame(e, p.target.name(), p.tensors.name()))?;
    let clean = score(ctx, &clean_out)?;
    let source_out = m.run_plain(source, &want).map_err(|e| m.blame(e, p.source.name(), p.tensors.name()))?;
    let source_score = score(ctx, &source_out)?;
    let direct = matches!(&p.receivers.0[..], [r] if r == "logits");
    let patched = if direct {
        let out = run_mixed(&m, &target, &frozen, &comps, &[all], None, Want::outputs(&want))
            .map_err(|e| m.blame(e, p.target.name(), p.tensors.name()))?;
        score(ctx, &out[0])?
    } else {
        let receivers = select_names(&m, &p.receivers)?;
        if let Some(r) = receivers.iter().find(|r| names.contains(r)) {
            return Err(p.receivers.error(format!("`{r}` is both a sender tensor and a receiver")).help(
                "receivers are the inputs of later components (their values, queries or keys), not their outputs",
            ));
        }
        let step = run_mixed(
            &m,
            &target,
            &frozen,
            &comps,
            &[all],
            None,
            Want { outputs: &want, capture: &receivers, last_position: false },
        )
        .map_err(|e| m.blame(e, p.target.name(), p.receivers.name()))?;
        let rparts = p.receiver_parts.max(1);
        let recv_vals: Outputs =
            receivers.iter().filter_map(|r| step[0].get(r).map(|v| (r.clone(), v.clone()))).collect();
        let rcomps = split(&receivers, &recv_vals, rparts, p.receiver_parts.name())?;
        let chosen: Vec<usize> = if p.receiver_only.is_none() {
            (0..rcomps.len()).collect()
        } else {
            pairs(&p.receiver_only, receivers.len(), rparts)?
        };
        let rows = vec![chosen.iter().map(|c| (*c, 1.0)).collect()];
        let out = run_mixed(&m, &target, &recv_vals, &rcomps, &rows, None, Want::outputs(&want))
            .map_err(|e| m.blame(e, p.target.name(), p.receivers.name()))?;
        score(ctx, &out[0])?
    };
    Ok(Value::record([
        ("effect", Value::Num(patched - clean)),
        ("patched", Value::Num(patched)),
        ("clean", Value::Num(clean)),
        ("source", Value::Num(source_score)),
    ]))
}

// ---------------------------------------------------------------- circuits
