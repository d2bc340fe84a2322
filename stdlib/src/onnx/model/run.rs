//! Running a model: plain runs, the inputs a text model's run fills,
//! positions and the KV cache's prefix.

use super::*;
use crate::onnx::error::ModelError;
use crate::onnx::graph;
use crate::onnx::proto::ModelProto;
use assay_interpreter::Tensor as Lazy;
use ndarray::ArrayD;
use ort::value::{DynValue, TensorElementType, TensorValueType, ValueType};
use std::collections::BTreeMap;

impl Model {
    /// The outputs that can be computed at the last position only (see
    /// [`graph::last_position`]); an error saying why if none can.
    pub fn last_position_outputs(&self) -> Result<Vec<String>, ModelError> {
        let ports = self.every_tensor()?;
        last_position_of(&self.proto, &self.output_names(), ports).map(|(_, done)| done)
    }

    /// Every top-level tensor with its inferred type and shape, found by
    /// exposing all of them once and reading ONNX Runtime's metadata.
    pub fn every_tensor(&self) -> Result<&Vec<Port>, ModelError> {
        self.every_tensor
            .get_or_init(|| {
                let names: Vec<String> = graph::sites(&self.proto)
                    .into_iter()
                    .filter(|s| matches!(s.kind, graph::Kind::Node { .. }))
                    .map(|s| s.name)
                    .collect();
                self.output_types(&graph::expose(&self.proto, &names)?)
            })
            .as_ref()
            .map_err(|e| e.clone())
    }

    pub(super) fn port_of(&self, name: &str) -> Result<Port, ModelError> {
        if let Some(p) = self.inputs.iter().chain(self.outputs.iter()).find(|p| p.name == name) {
            return Ok(p.clone());
        }
        self.every_tensor()?
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| ModelError::UnknownTensor(name.to_string()))
    }

    /// Runs with the given hook set and returns the wanted outputs as f32.
    pub fn run(
        &self,
        key: &HookSet,
        make: impl FnOnce() -> Result<ModelProto, ModelError>,
        feeds: Vec<(String, ArrayD<f32>)>,
        want: &[String],
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        self.run_lazy(key, make, feeds, want).map(owned)
    }

    /// Runs the graph as loaded.
    pub fn run_plain(
        &self,
        feeds: Vec<(String, ArrayD<f32>)>,
        want: &[String],
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        self.run(&HookSet::Plain, || Ok(self.proto.clone()), feeds, want)
    }

    /// As [`Model::run_plain`], with outputs left in ONNX Runtime's buffers.
    pub fn run_plain_lazy(
        &self,
        feeds: Vec<(String, ArrayD<f32>)>,
        want: &[String],
    ) -> Result<BTreeMap<String, Lazy>, ModelError> {
        self.run_lazy(&HookSet::Plain, || Ok(self.proto.clone()), feeds, want)
    }

    /// As [`Model::run`], with f32 outputs left in ONNX Runtime's buffers
    /// (copied only if a script needs an array of its own).
    pub fn run_lazy(
        &self,
        key: &HookSet,
        make: impl FnOnce() -> Result<ModelProto, ModelError>,
        feeds: Vec<(String, ArrayD<f32>)>,
        want: &[String],
    ) -> Result<BTreeMap<String, Lazy>, ModelError> {
        let feeds = self.text_defaults(feeds);
        self.check_positions(&feeds)?;
        let s = self.session(key, make)?;
        let mut s = s.lock().map_err(|_| midway())?;
        let declared: Vec<Port> = s.inputs().iter().map(|o| Port::from_outlet(o.name(), o.dtype())).collect();
        for p in &declared {
            if !feeds.iter().any(|(n, _)| *n == p.name) {
                let names: Vec<String> =
                    self.inputs.iter().map(|p| format!("{} {} {}", p.name, p.dtype, p.shape_text())).collect();
                return Err(ModelError::Input(format!(
                    "missing input `{}`; the model takes: {}",
                    p.name,
                    names.join("; ")
                )));
            }
        }
        let mut values: Vec<(String, DynValue)> = Vec::new();
        for (name, arr) in feeds {
            let port = declared.iter().find(|p| p.name == name).ok_or_else(|| {
                let names: Vec<&str> = self.inputs.iter().map(|p| p.name.as_str()).collect();
                ModelError::Input(format!("the model has no input `{name}`; its inputs are: {}", names.join(", ")))
            })?;
            check_shape(port, arr.shape())?;
            values.push((name, to_ort(arr, port).map_err(ModelError::Input)?));
        }
        // The inputs are lent, not given: a graph output that is a graph
        // input (`capture(m, x, "input")`) is the input's own buffer, which
        // must outlive the copy below.
        let lent: Vec<(&str, &DynValue)> = values.iter().map(|(n, v)| (n.as_str(), v)).collect();
        let mut outputs = s.run(lent).map_err(|e| ModelError::Runtime(format!("ONNX Runtime failed: {e}")))?;
        let mut out = BTreeMap::new();
        for w in want {
            let v =
                outputs.remove(w).ok_or_else(|| ModelError::Runtime(format!("the run produced no output `{w}`")))?;
            // An output that is an input aliases the input's buffer, which
            // is freed on return: copy it.
            let aliased = values.iter().any(|(n, _)| n == w);
            let f32_tensor = matches!(v.dtype(), ValueType::Tensor { ty: TensorElementType::Float32, .. });
            let t = if f32_tensor && !aliased {
                let t = v
                    .downcast::<TensorValueType<f32>>()
                    .map_err(|e| ModelError::Runtime(format!("output `{w}`: {e}")))?;
                Lazy::backed(OrtF32(t))
            } else {
                Lazy::new(from_ort(&v).map_err(|e| ModelError::Runtime(format!("output `{w}`: {e}")))?)
            };
            out.insert(w.clone(), t);
        }
        Ok(out)
    }

    /// The model's outputs, less a KV cache's `present.*` (asked for by name
    /// where wanted).
    pub fn output_names(&self) -> Vec<String> {
        let cache = |n: &str| self.kv.iter().flatten().any(|s| s.present == n);
        self.outputs.iter().filter(|p| !cache(&p.name)).map(|p| p.name.clone()).collect()
    }

    /// The longest sequence the model's position table covers: the
    /// `max_positions` its metadata states (Assay's built models), or the
    /// rows of a learned position embedding that `position_ids` index
    /// (a Gather of an initializer by that input, as GPT-2 exports have).
    /// `None` where the graph does not say (e.g. rotary models computing
    /// angles on the fly).
    pub fn max_positions(&self) -> Option<usize> {
        *self.max_positions.get_or_init(|| {
            let stated = self.proto.metadata_props.iter().find(|p| p.key() == "max_positions");
            if let Some(n) = stated.and_then(|p| p.value().parse::<usize>().ok()) {
                return Some(n);
            }
            let g = self.proto.graph.as_ref()?;
            g.node.iter().find_map(|n| {
                let (data, idx) = (n.input.first()?, n.input.get(1)?);
                if n.op_type() != "Gather" || idx != "position_ids" {
                    return None;
                }
                let t = g.initializer.iter().find(|t| t.name() == data)?;
                (t.dims.len() == 2).then(|| usize::try_from(t.dims[0]).ok()).flatten()
            })
        })
    }

    /// Inputs a run fills when they are not given, for a model that takes
    /// `input_ids`: `attention_mask` (ones), `position_ids` (counted from
    /// the mask), `token_type_ids` (zeros) and, for a model with a KV cache,
    /// the cache itself (`past_key_values.*`, empty). See `text_defaults`.
    pub fn optional_input(&self, name: &str) -> bool {
        self.takes("input_ids") && matches!(name, "attention_mask" | "position_ids" | "token_type_ids")
            || self.kv.as_ref().is_some_and(|slots| slots.iter().any(|s| s.past == name))
    }

    fn takes(&self, name: &str) -> bool {
        self.inputs.iter().any(|i| i.name == name)
    }

    /// Whether prompts of different lengths can run as one left-padded
    /// batch: the model takes the attention mask and position ids, so each
    /// row's positions start at its first token.
    pub fn pads_left(&self) -> bool {
        self.takes("attention_mask") && self.takes("position_ids")
    }

    /// Refuses a sequence longer than the position table, with the limit,
    /// rather than the runtime's out-of-range or broadcast text.
    fn check_positions(&self, feeds: &[(String, ArrayD<f32>)]) -> Result<(), ModelError> {
        let Some(max) = self.max_positions() else { return Ok(()) };
        let t = feeds.iter().find(|(k, _)| k == "input_ids").and_then(|(_, v)| v.shape().get(1).copied());
        let past = feeds
            .iter()
            .find(|(k, _)| self.kv.iter().flatten().any(|s| s.past == *k))
            .and_then(|(_, v)| v.shape().get(2).copied())
            .unwrap_or(0);
        let from_ids = feeds
            .iter()
            .find(|(k, _)| k == "position_ids")
            .and_then(|(_, v)| v.iter().copied().fold(None, |m: Option<f32>, x| Some(m.map_or(x, |m| m.max(x)))))
            .map(|m| m as usize + 1);
        let len = from_ids.unwrap_or(0).max(t.map(|t| t + past).unwrap_or(0));
        if len > max {
            return Err(ModelError::Input(format!(
                "the sequence is {len} tokens{} but the model's position table holds {max}",
                if past > 0 { format!(" ({past} cached)") } else { String::new() }
            )));
        }
        Ok(())
    }

    /// For a model that takes `input_ids`: where not given, an empty past
    /// (P = 0) of the batch's size for a model with a KV cache,
    /// `attention_mask` (ones over P+T), `position_ids` (counted from a
    /// given mask, else P..P+T) and `token_type_ids` (zeros).
    fn text_defaults(&self, mut feeds: Vec<(String, ArrayD<f32>)>) -> Vec<(String, ArrayD<f32>)> {
        if !self.takes("input_ids") {
            return feeds;
        }
        let fed = |feeds: &[(String, ArrayD<f32>)], n: &str| feeds.iter().any(|(k, _)| k == n);
        let Some(ids) = feeds.iter().find(|(k, _)| k == "input_ids").map(|(_, v)| v.shape().to_vec()) else {
            return feeds;
        };
        let n = ids.first().copied().unwrap_or(1);
        let slots = self.kv.as_deref().unwrap_or_default();
        let past = feeds
            .iter()
            .find(|(k, _)| slots.iter().any(|s| s.past == *k))
            .map(|(_, v)| v.shape().get(2).copied().unwrap_or(0));
        if past.is_none() {
            for s in slots {
                feeds.push((s.past.clone(), ArrayD::zeros(vec![n, s.heads, 0, s.head_dim])));
            }
        }
        let (p, t) = (past.unwrap_or(0), ids.get(1).copied().unwrap_or(1));
        let takes = |name: &str| self.takes(name);
        if takes("token_type_ids") && !fed(&feeds, "token_type_ids") {
            feeds.push(("token_type_ids".into(), ArrayD::zeros(vec![n, t])));
        }
        if takes("attention_mask") && !fed(&feeds, "attention_mask") {
            feeds.push(("attention_mask".into(), ArrayD::ones(vec![n, p + t])));
        }
        if takes("position_ids") && !fed(&feeds, "position_ids") {
            // From a given mask as Hugging Face counts them (each row's
            // attended tokens so far, less one: left or right padding both
            // work), else P..P+T.
            let mask = feeds.iter().find(|(k, _)| k == "attention_mask").map(|(_, m)| m.clone());
            let pos = match mask.filter(|m| m.ndim() == 2 && m.shape()[0] == n && m.shape()[1] >= t) {
                Some(m) => {
                    let s = m.shape()[1];
                    let mut pos = ndarray::Array2::<f32>::zeros((n, t));
                    for r in 0..n {
                        let mut seen = 0.0f32;
                        for j in 0..s {
                            seen += m[[r, j]];
                            if j + t >= s {
                                pos[[r, j + t - s]] = (seen - 1.0).max(0.0);
                            }
                        }
                    }
                    pos
                }
                None => ndarray::Array2::from_shape_fn((n, t), |(_, j)| (p + j) as f32),
            };
            feeds.push(("position_ids".into(), pos.into_dyn()));
        }
        feeds
    }

    /// Runs `feeds` (a prefix of tokens) and returns its KV cache as the
    /// `past_key_values.*` feeds of a run that continues it.
    pub fn kv_prefix(&self, feeds: Vec<(String, ArrayD<f32>)>) -> Result<Vec<(String, ArrayD<f32>)>, ModelError> {
        let slots = self
            .kv
            .as_ref()
            .ok_or_else(|| ModelError::Graph("the model has no KV cache (`past_key_values.*` inputs)".into()))?;
        let want: Vec<String> = slots.iter().map(|s| s.present.clone()).collect();
        let mut out = self.run_plain(feeds, &want)?;
        slots
            .iter()
            .map(|s| {
                let v = out.remove(&s.present);
                v.map(|v| (s.past.clone(), v)).ok_or_else(|| ModelError::Runtime(format!("no `{}`", s.present)))
            })
            .collect()
    }
}

/// Outputs as arrays of their own (one copy each, out of ONNX Runtime's buffers).
pub(super) fn owned(out: BTreeMap<String, Lazy>) -> BTreeMap<String, ArrayD<f32>> {
    out.into_iter().map(|(k, t)| (k, t.to_array())).collect()
}

/// The model rewritten to compute `outputs` at the last position only, and
/// the outputs this applied to; an error saying why if it applied to none.
pub(super) fn last_position_of(
    m: &ModelProto,
    outputs: &[String],
    ports: &[Port],
) -> Result<(ModelProto, Vec<String>), ModelError> {
    let rank = |t: &str| ports.iter().find(|p| p.name == t).and_then(|p| p.shape.as_ref()).map(Vec::len);
    let (sliced, done, refused) = graph::last_position(m, outputs, &rank)?;
    if done.is_empty() {
        return Err(ModelError::Graph(format!(
            "cannot compute the outputs at the last position only: {}",
            refused.join("; ")
        )));
    }
    Ok((sliced, done))
}
