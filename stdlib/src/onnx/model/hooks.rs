//! Runs with hooks: captured tensors, reductions, patches and additions,
//! each a rewritten graph in its own session.

use super::*;
use crate::onnx::error::ModelError;
use crate::onnx::graph;
use assay_interpreter::Tensor as Lazy;
use ndarray::ArrayD;
use std::collections::BTreeMap;

impl Model {
    /// Runs exposing the named tensors; returns them and the model outputs.
    pub fn capture(
        &self,
        feeds: Vec<(String, ArrayD<f32>)>,
        tensors: &[String],
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        self.capture_lazy(feeds, tensors).map(owned)
    }

    /// As [`Model::capture`], with the tensors left in ONNX Runtime's buffers.
    pub fn capture_lazy(
        &self,
        feeds: Vec<(String, ArrayD<f32>)>,
        tensors: &[String],
    ) -> Result<BTreeMap<String, Lazy>, ModelError> {
        let mut sorted = tensors.to_vec();
        sorted.sort();
        sorted.dedup();
        let key = HookSet::Capture(sorted.clone());
        let proto = &self.proto;
        self.run_lazy(&key, || graph::expose(proto, &sorted), feeds, &sorted)
    }

    /// Runs forward and backward (`onnx::grad`): returns `tensor` and, under
    /// `grad::grad_name(t)`, the gradient of Σ weights·tensor[indices]
    /// with respect to each `wrt` tensor, and each intermediate `wrt`
    /// tensor's value under its own name. `indices` is [K, rank]
    /// (negative entries count from the end), `weights` [K].
    pub fn grad(
        &self,
        feeds: Vec<(String, ArrayD<f32>)>,
        wrt: &[String],
        tensor: &str,
        (indices, weights): (ArrayD<f32>, ArrayD<f32>),
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        use crate::onnx::grad;
        let key = HookSet::Grad { wrt: wrt.to_vec(), tensor: tensor.to_string() };
        let mut feeds = feeds;
        feeds.push((grad::INDICES.to_string(), indices));
        feeds.push((grad::WEIGHTS.to_string(), weights));
        let mut want = vec![tensor.to_string()];
        want.extend(wrt.iter().map(|t| grad::grad_name(t)));
        for t in wrt {
            if !want.contains(t) && !self.inputs.iter().any(|i| &i.name == t) {
                want.push(t.clone());
            }
        }
        let proto = &self.proto;
        // Shapes as ONNX Runtime infers them, so that most broadcast sums
        // are settled here (a graph with fewer nodes builds much faster).
        // (Read before the session lock is taken: it builds a session too.)
        let ports = self.every_tensor().map(|v| v.to_vec()).unwrap_or_default();
        self.run(
            &key,
            || grad::backward_with(proto, wrt, tensor, grad::shapes_of(ports.iter().chain(self.inputs.iter()))),
            feeds,
            &want,
        )
    }

    /// Runs the patched graph (as [`Model::patch`]: `T = mask*new +
    /// (1-mask)*orig` for each patch) forward and backward: returns
    /// `tensor` and, under `grad::grad_name(graph::mask_input(t))`, the
    /// gradient of Σ weights·tensor[indices] with respect to each patch's
    /// mask, shaped as the mask.
    pub fn grad_patched(
        &self,
        mut feeds: Vec<(String, ArrayD<f32>)>,
        patches: Vec<(String, ArrayD<f32>, ArrayD<f32>)>,
        tensor: &str,
        (indices, weights): (ArrayD<f32>, ArrayD<f32>),
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        use crate::onnx::grad;
        let mut types = BTreeMap::new();
        for (t, _, _) in &patches {
            types.insert(t.clone(), self.patch_type(t)?);
        }
        let key = HookSet::PatchGrad { patched: types.keys().cloned().collect(), tensor: tensor.to_string() };
        let wrt: Vec<String> = types.keys().map(|t| graph::mask_input(t)).collect();
        for (t, new, mask) in patches {
            feeds.push((graph::new_input(&t), new));
            feeds.push((graph::mask_input(&t), mask));
        }
        feeds.push((grad::INDICES.to_string(), indices));
        feeds.push((grad::WEIGHTS.to_string(), weights));
        let mut want = vec![tensor.to_string()];
        want.extend(wrt.iter().map(|t| grad::grad_name(t)));
        let ports = self.every_tensor().map(|v| v.to_vec()).unwrap_or_default();
        let proto = &self.proto;
        self.run(
            &key,
            || {
                let p = graph::patch(proto, &types)?;
                grad::backward_with(&p, &wrt, tensor, grad::shapes_of(ports.iter().chain(self.inputs.iter())))
            },
            feeds,
            &want,
        )
    }

    /// Runs and returns `op` over `axes` of a tensor, computed inside the graph.
    pub fn reduced(
        &self,
        feeds: Vec<(String, ArrayD<f32>)>,
        tensor: &str,
        op: &str,
        axes: &[i64],
    ) -> Result<ArrayD<f32>, ModelError> {
        let key = HookSet::Reduce { op: op.to_string(), axes: axes.to_vec(), tensor: tensor.to_string() };
        let name = graph::reduced_name(op, tensor);
        let proto = &self.proto;
        let mut out = self.run(&key, || graph::reduce(proto, tensor, op, axes), feeds, std::slice::from_ref(&name))?;
        out.remove(&name).ok_or_else(|| ModelError::Runtime("the reduction produced no output".into()))
    }

    /// Runs with each named tensor mixed as `mask*new + (1-mask)*orig`.
    pub fn patch(
        &self,
        feeds: Vec<(String, ArrayD<f32>)>,
        patches: Vec<(String, ArrayD<f32>, ArrayD<f32>)>,
        want: &[String],
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        self.patch_capture(feeds, patches, want, &[], false)
    }

    /// The type a patch of tensor `t` takes; an error (about `t` alone)
    /// when the model has no such tensor or it cannot be patched: a graph
    /// input (pass another input instead) or a tensor that is not floating
    /// point. Tools call it first, so its errors blame the tensor argument.
    pub fn patch_type(&self, t: &str) -> Result<crate::onnx::proto::TypeProto, ModelError> {
        if self.inputs.iter().any(|p| p.name == t) {
            return Err(ModelError::Tensor {
                name: t.to_string(),
                message: format!("`{t}` is a graph input; to change it, pass a different input instead"),
            });
        }
        // Initializers (weights) have declared types; other tensors are inferred.
        let is_init = graph::sites(&self.proto).iter().any(|s| s.name == t && s.kind == graph::Kind::Initializer);
        if is_init {
            if let Some(ty) = graph::declared_type(&self.proto, t) {
                if !graph::is_float(graph::elem_of(&ty)) {
                    return Err(ModelError::Tensor {
                        name: t.to_string(),
                        message: format!(
                            "`{t}` holds {} values; only floating-point tensors can be patched",
                            graph::elem_name(graph::elem_of(&ty))
                        ),
                    });
                }
                return Ok(ty);
            }
        }
        let port = self.port_of(t)?;
        let elem = port.elem.and_then(onnx_elem).ok_or_else(|| ModelError::Tensor {
            name: t.to_string(),
            message: format!("`{t}` holds {} values; only floating-point tensors can be patched", port.dtype),
        })?;
        Ok(port_type(&port, elem))
    }

    /// As `patch`, also returning the (patched-run) values of intermediate
    /// tensors `capture`; `want` may name them too. With `last_position`,
    /// the model's outputs are computed at the last position only where
    /// [`graph::last_position`] can (an error if it can for none).
    pub fn patch_capture(
        &self,
        mut feeds: Vec<(String, ArrayD<f32>)>,
        patches: Vec<(String, ArrayD<f32>, ArrayD<f32>)>,
        want: &[String],
        capture: &[String],
        last_position: bool,
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        let mut types = BTreeMap::new();
        for (t, _, _) in &patches {
            types.insert(t.clone(), self.patch_type(t)?);
        }
        let mut exposed = capture.to_vec();
        exposed.sort();
        exposed.dedup();
        let key = HookSet::Patch { patched: types.keys().cloned().collect(), capture: exposed.clone(), last_position };
        // Ranks are read before the session is built (building holds the lock
        // that reading them may need).
        let ports = if last_position { self.every_tensor()?.clone() } else { Vec::new() };
        let outputs = self.output_names();
        for (t, new, mask) in patches {
            feeds.push((graph::new_input(&t), new));
            feeds.push((graph::mask_input(&t), mask));
        }
        let proto = &self.proto;
        let mut all = want.to_vec();
        all.extend(exposed.iter().cloned());
        all.sort();
        all.dedup();
        self.run(
            &key,
            || {
                let mut p = graph::patch(proto, &types)?;
                if last_position {
                    p = last_position_of(&p, &outputs, &ports)?.0;
                }
                if exposed.is_empty() {
                    Ok(p)
                } else {
                    graph::expose(&p, &exposed)
                }
            },
            feeds,
            &all,
        )
    }
}

impl Model {
    /// Runs with `patches` (tensor, new value, mask: `T = mask*new +
    /// (1-mask)*orig`) and `adds` (tensor, vector: `T = orig + vector`), each
    /// broadcast over the tensor, so they apply at every position, also to
    /// tokens a KV-cache run adds one at a time.
    pub fn hooked(
        &self,
        mut feeds: Vec<(String, ArrayD<f32>)>,
        patches: Vec<(String, ArrayD<f32>, ArrayD<f32>)>,
        adds: Vec<(String, ArrayD<f32>)>,
        want: &[String],
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        if patches.is_empty() && adds.is_empty() {
            return self.run_plain(feeds, want);
        }
        let mut ptypes = BTreeMap::new();
        for (t, _, _) in &patches {
            ptypes.insert(t.clone(), self.patch_type(t)?);
        }
        let mut atypes = BTreeMap::new();
        for (t, _) in &adds {
            atypes.insert(t.clone(), self.patch_type(t)?);
        }
        let key =
            HookSet::PatchAdd { patched: ptypes.keys().cloned().collect(), added: atypes.keys().cloned().collect() };
        for (t, new, mask) in patches {
            feeds.push((graph::new_input(&t), new));
            feeds.push((graph::mask_input(&t), mask));
        }
        for (t, v) in adds {
            feeds.push((graph::add_input(&t), v));
        }
        let proto = &self.proto;
        self.run(&key, || graph::add(&graph::patch(proto, &ptypes)?, &atypes), feeds, want)
    }
}
