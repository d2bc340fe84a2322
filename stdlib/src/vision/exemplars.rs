//! Dataset exemplars in one streaming pass: images are decoded batch by
//! batch, the layer is reduced over space inside the graph (only [B, C]
//! leaves ONNX Runtime), and the top k of every channel is kept. Memory
//! grows with k times the number of channels, not with the data set.

use std::sync::Arc;

use assay_interpreter::{Args, Registry, Signature, ToolCtx, ToolError, Type, Value};
use ndarray::{Array4, ArrayD, Axis};

use super::data::{dataset_of, Dataset};
use crate::core::FnTool;
use crate::onnx::model::{Model, Preprocess};
use crate::onnx::units::{Reduce, Select, Unit};

/// Keeps the k largest (value, index) pairs, largest first; ties keep the earlier index.
#[derive(Clone)]
pub struct TopK {
    k: usize,
    items: Vec<(f32, usize)>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK { k, items: Vec::with_capacity(k + 1) }
    }
    pub fn push(&mut self, v: f32, i: usize) {
        let v = if v.is_nan() { f32::NEG_INFINITY } else { v };
        if self.items.len() == self.k && self.items.last().is_some_and(|(w, _)| *w >= v) {
            return;
        }
        let pos = self.items.partition_point(|(w, j)| *w > v || (*w == v && *j < i));
        self.items.insert(pos, (v, i));
        self.items.truncate(self.k);
    }
    pub fn items(&self) -> &[(f32, usize)] {
        &self.items
    }
}

fn exemplars_sig() -> Signature {
    Signature::new("exemplars", "vision", "The images of a data set that drive a unit most, in ONE streaming pass: for a unit (a channel), {images, activations, labels, names, indices} of its top k; for a layer (every channel), {activations: [C, k], indices: [C, k], count}, and `item(data, i)` gives any exemplar's image. Images are preprocessed as the model says (EfficientNet-Lite: 256 → crop 224, (x-127)/128).")
        .param("unit", Type::Handle("unit"), "a channel unit or a layer")
        .param("data", Type::Handle("dataset"), "images to search")
        .opt("k", Type::Num, Value::Num(12.0), "exemplars per channel")
        .opt("batch", Type::Num, Value::Num(32.0), "images per run")
        .returns(Type::record())
        .example("let net = model(\"efficientnet-lite0\")\nlet l = layer(net, \"/_blocks.15/Relu6_output_0\")\nlet ex = exemplars(l, images(\"fixtures/*.png\"), k: 1)\nassert ex.activations.shape == [1152, 1] and ex.count == 1")
}

fn exemplars(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let unit: &Unit = match a.get(0) {
        Value::Handle(h) => h
            .as_any()
            .downcast_ref::<Unit>()
            .ok_or_else(|| ToolError::arg(0, format!("expected a unit or layer, found a {}", h.kind())))?,
        other => return Err(ToolError::arg(0, format!("expected a unit or layer, found a {}", other.type_name()))),
    };
    let (channel, reduce) = match unit.select {
        Select::Channel(c, r) => (c, r),
        _ => {
            return Err(ToolError::arg(
                0,
                "exemplars rank channels: use unit(model, tensor, channel: c) or layer(model, tensor)",
            ))
        }
    };
    let data = dataset_of(a, 1)?;
    let k = a.count(2)?.max(1);
    let batch = a.count(3)?.max(1);
    let pre: Preprocess = unit.model.preprocess.ok_or_else(|| {
        ToolError::arg(0, "the model does not say how images become its input")
            .help("use a built-in image model such as model(\"efficientnet-lite0\")")
    })?;
    let mut noted = Vec::new();
    let tops = pass(&unit.model, &unit.tensor, reduce, pre, data, k, batch, &mut |p, d| {
        noted.push((p.to_path_buf(), d.to_string()))
    })
    .map_err(|e| ToolError::arg(1, e))?;
    for (p, d) in noted {
        ctx.note_input(&p, &d);
    }
    let n = data.items.len();
    let count = Value::Num(n as f64);
    match channel {
        None => {
            let c = tops.len();
            let kk = tops.first().map(|t| t.items().len()).unwrap_or(0);
            let mut vals = Vec::with_capacity(c * kk);
            let mut idx = Vec::with_capacity(c * kk);
            for t in &tops {
                for (v, i) in t.items() {
                    vals.push(*v);
                    idx.push(*i as f32);
                }
            }
            let shape = vec![c, kk];
            Ok(Value::record([
                (
                    "activations",
                    Value::tensor(
                        ArrayD::from_shape_vec(shape.clone(), vals).map_err(|e| ToolError::new(e.to_string()))?,
                    ),
                ),
                (
                    "indices",
                    Value::tensor(ArrayD::from_shape_vec(shape, idx).map_err(|e| ToolError::new(e.to_string()))?),
                ),
                ("count", count),
            ]))
        }
        Some(ch) => {
            let t = tops
                .get(ch)
                .ok_or_else(|| ToolError::arg(0, format!("channel {ch} is out of range ({} channels)", tops.len())))?;
            let mut images = Vec::new();
            for (_, i) in t.items() {
                images.push(Value::Image(Arc::new(data.load(*i, ctx).map_err(|e| ToolError::arg(1, e))?)));
            }
            let items = t.items();
            Ok(Value::record([
                ("images", Value::list(images)),
                ("activations", Value::nums(items.iter().map(|(v, _)| *v as f64))),
                ("indices", Value::nums(items.iter().map(|(_, i)| *i as f64))),
                (
                    "labels",
                    Value::list(
                        items
                            .iter()
                            .map(|(_, i)| data.items[*i].label.as_deref().map(Value::str).unwrap_or_default())
                            .collect(),
                    ),
                ),
                ("names", Value::list(items.iter().map(|(_, i)| Value::str(&data.items[*i].name)).collect())),
                ("count", count),
            ]))
        }
    }
}

/// One streaming pass: the top k of every channel of `tensor` over the data
/// set. `on_read` sees each file read (its path and sha256).
#[allow(clippy::too_many_arguments, reason = "the pass's inputs, each needed")]
pub fn pass(
    model: &Model,
    tensor: &str,
    reduce: Reduce,
    pre: Preprocess,
    data: &Dataset,
    k: usize,
    batch: usize,
    on_read: &mut dyn FnMut(&std::path::Path, &str),
) -> Result<Vec<TopK>, String> {
    let input = model.inputs.first().map(|p| p.name.clone()).unwrap_or_default();
    let op = if reduce == Reduce::Max { "ReduceMax" } else { "ReduceMean" };
    let n = data.items.len();
    let mut tops: Vec<TopK> = Vec::new();
    let mut start = 0;
    let show_progress = n >= 256 && std::io::IsTerminal::is_terminal(&std::io::stderr());
    while start < n {
        let end = (start + batch).min(n);
        let x = batch_tensor(data, start..end, pre, on_read)?;
        let acts = model.reduced(vec![(input.clone(), x)], tensor, op, &[2, 3])?;
        if acts.ndim() != 2 {
            return Err(format!("`{tensor}` is not [N, C, H, W]"));
        }
        if tops.is_empty() {
            tops = vec![TopK::new(k); acts.shape()[1]];
        }
        for (r, row) in acts.axis_iter(Axis(0)).enumerate() {
            for (c, v) in row.iter().enumerate() {
                tops[c].push(*v, start + r);
            }
        }
        start = end;
        if show_progress {
            eprint!("\rexemplars: {start}/{n} images");
        }
    }
    if show_progress {
        eprintln!();
    }
    Ok(tops)
}

/// Reads and preprocesses items `range` into one [B, 3, size, size] tensor.
pub fn batch_tensor(
    data: &Dataset,
    range: std::ops::Range<usize>,
    pre: Preprocess,
    on_read: &mut dyn FnMut(&std::path::Path, &str),
) -> Result<ArrayD<f32>, String> {
    let s = pre.size as usize;
    let b = range.len();
    let mut buf = Vec::with_capacity(b * 3 * s * s);
    for i in range {
        let (img, path, digest) = data.read(i)?;
        on_read(&path, &digest);
        buf.extend(super::preprocess(&img, pre.resize, pre.size, pre.mean, pre.std)?);
    }
    Array4::from_shape_vec((b, 3, s, s), buf).map(|a| a.into_dyn()).map_err(|e| e.to_string())
}

pub(crate) fn register(r: &mut Registry) {
    r.register(FnTool::new(exemplars_sig, exemplars));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_largest_in_order() {
        let mut t = TopK::new(3);
        for (i, v) in [5.0, 1.0, 9.0, 5.0, 7.0, f32::NAN].iter().enumerate() {
            t.push(*v, i);
        }
        assert_eq!(t.items(), &[(9.0, 2), (7.0, 4), (5.0, 0)]);
    }
}
