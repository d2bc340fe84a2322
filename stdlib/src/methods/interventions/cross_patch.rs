//! Cross-model activation patching (CMAP): activations of a donor model
//! patched into another model's run.

use super::*;
use crate::core::kinds::{Inputs, TensorNames};
use crate::onnx::handle::{feeds, ModelHandle};
use assay_interpreter::Bound;

tool! {
    /// Cross-model activation patching (CMAP): runs `donor` on `donor_inputs` (default: `inputs`),
    /// takes the tensors named by `tensors` (names or globs, resolved in the donor), and patches them
    /// into `model` run on `inputs`. Both models must share the tensors' names and shapes; a name or
    /// shape that does not correspond is an error naming both sides. With `parts` and `only` ([tensor
    /// index, part] pairs), only those slices (e.g. heads) are patched. Returns `model`'s outputs.
    ///
    /// ```assay
    /// let a = model("planted")
    /// let b = model("planted-altered")
    /// let x = tensor([[0, 1, 2]])
    /// assert run(b, x).logits != run(a, x).logits
    /// let fixed = cross_patch(b, a, x, "/layers.0/heads_output_0", parts: 2, only: [[0, 0]])
    /// assert fixed.logits == run(a, x).logits
    /// ```
    cross_patch in Interventions -> Type::record();
    {
        /// the model patched into
        model: ModelHandle,
        /// the model the activations come from (same architecture)
        donor: ModelHandle,
        /// the inputs of `model`'s run
        inputs: Inputs,
        /// tensor names or globs
        tensors: TensorNames,
        /// the donor's inputs (default: the same)
        donor_inputs: Option<Inputs> = None,
        /// slices per tensor along its last axis
        parts: usize = 1,
        /// [tensor index, part] slices to patch (default: all)
        only: Arg [Type::list(Type::list(Type::Num))] = None,
    }
    cross_patch
}

fn cross_patch(p: cross_patch::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let donor = p.donor.clone();
    let inputs = feeds(&m, &p.inputs)?;
    let donor_inputs = match &*p.donor_inputs {
        None => feeds(&donor, &p.inputs)?,
        Some(d) => feeds(&donor, &Bound::new(p.donor_inputs.name(), d.clone()))?,
    };
    for (arg, feeds) in [(p.inputs.name(), &inputs), (p.donor_inputs.name(), &donor_inputs)] {
        if let Some((k, t)) = feeds.iter().find(|(_, t)| t.shape().first().is_some_and(|n| *n != 1)) {
            return Err(ToolError::arg(
                if p.donor_inputs.is_none() { p.inputs.name() } else { arg },
                format!("cross_patch patches one example at a time; input `{k}` has {} rows", t.shape()[0]),
            )
            .help("map over the examples: map(examples, x => cross_patch(model, donor, x, tensors))"));
        }
    }
    let names = select_names(&donor, &p.tensors)?;
    let target_names: Vec<String> = m.sites().into_iter().map(|s| s.name).collect();
    for n in &names {
        if !target_names.contains(n) {
            let help = match assay_interpreter::closest(n, target_names.iter().map(|s| s.as_str())) {
                Some(c) => {
                    format!("the nearest name in the target is `{c}`; CMAP needs models of the same architecture")
                }
                None => "CMAP needs models of the same architecture, with the same tensor names".into(),
            };
            return Err(p
                .tensors
                .error(format!("the donor has `{n}` but the target model has no tensor of that name"))
                .help(help));
        }
    }
    let donor_vals =
        donor.capture(donor_inputs, &names).map_err(|e| donor.blame(e, p.donor_inputs.name(), p.tensors.name()))?;
    let target_vals = m.capture(inputs.clone(), &names).map_err(|e| m.blame(e, p.inputs.name(), p.tensors.name()))?;
    for n in &names {
        let (d, t) = (donor_vals[n].shape(), target_vals[n].shape());
        if d != t {
            return Err(p
                .tensors
                .error(format!(
                    "`{n}` is {d:?} in the donor but {t:?} in the target: the models do not correspond there"
                ))
                .help("patch tensors whose shapes agree, with inputs of the same shape"));
        }
    }
    let parts = p.parts.max(1);
    let comps = split(&names, &donor_vals, parts, p.parts.name())?;
    let chosen: Vec<usize> =
        if p.only.is_none() { (0..comps.len()).collect() } else { pairs(&p.only, names.len(), parts)? };
    let rows = vec![chosen.iter().map(|c| (*c, 1.0)).collect()];
    let want = m.output_names();
    let out = run_mixed(&m, &inputs, &donor_vals, &comps, &rows, None, Want::outputs(&want))
        .map_err(|e| m.blame(e, p.inputs.name(), p.tensors.name()))?;
    Ok(Value::record(out[0].iter().map(|(k, v)| (k.clone(), Value::tensor(v.clone())))))
}

// ---------------------------------------------------------------- path patching
