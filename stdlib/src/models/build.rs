//! A small builder for ONNX graphs made from weights (the models Assay
//! converts itself): nodes named like a torch export, float32 and int64
//! initializers, and weights written to an external-data file when large.

use crate::onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataLocation, tensor_proto::DataType,
    tensor_shape_proto::dimension::Value as DimValue, tensor_shape_proto::Dimension, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};

pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}
pub fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

pub fn float_attr(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

pub fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// A graph input or output [N, dims...] with a symbolic batch dimension N.
pub fn batched(name: &str, elem: DataType, dims: &[i64]) -> ValueInfoProto {
    let mut dim = vec![Dimension { value: Some(DimValue::DimParam("N".into())), denotation: None }];
    dim.extend(dims.iter().map(|d| Dimension { value: Some(DimValue::DimValue(*d)), denotation: None }));
    let ty = type_proto::Tensor { elem_type: Some(elem as i32), shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(ty)), denotation: None }),
        ..Default::default()
    }
}

/// A model of one graph at opset 13, produced by Assay.
pub fn model(graph: GraphProto, doc: String) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        producer_name: Some("assay".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(doc),
        graph: Some(graph),
        ..Default::default()
    }
}

/// Writes a model Assay built into the cache as `models/{dir}/{stem}-{sha}.onnx`
/// (named by its bytes, so a changed definition never meets a stale file).
/// Returns the path, the bytes and their sha256.
pub fn cache_built(dir: &str, stem: &str, proto: &ModelProto) -> Result<(std::path::PathBuf, Vec<u8>, String), String> {
    let bytes = crate::onnx::graph::encode(proto);
    let sha = crate::fetch::sha256_bytes(&bytes);
    let path = crate::fetch::cache_dir().join("models").join(dir).join(format!("{stem}-{}.onnx", &sha[..12]));
    if !path.is_file() {
        crate::fetch::write_atomic(&path, &bytes)?;
    }
    Ok((path, bytes, sha))
}

#[derive(Default)]
pub struct GraphBuilder {
    pub nodes: Vec<NodeProto>,
    pub inits: Vec<TensorProto>,
    /// Bytes of the external-data file, when `external` is set.
    pub data: Vec<u8>,
    /// File name initializers larger than 1 KiB are stored in.
    pub external: Option<String>,
}

impl GraphBuilder {
    /// Adds a node; its output is `{name}_output_0` unless `output` is given.
    pub fn node(&mut self, op: &str, name: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = format!("{name}_output_0");
        self.node_to(op, name, inputs, attrs, &out);
        out
    }

    pub fn node_to(&mut self, op: &str, name: &str, inputs: &[&str], attrs: Vec<AttributeProto>, output: &str) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: Some(name.into()),
            op_type: Some(op.into()),
            attribute: attrs,
            ..Default::default()
        });
    }

    fn raw(&mut self, name: &str, dims: &[usize], data_type: DataType, raw: Vec<u8>) {
        let mut t = TensorProto {
            name: Some(name.into()),
            data_type: Some(data_type as i32),
            dims: dims.iter().map(|d| *d as i64).collect(),
            ..Default::default()
        };
        match &self.external {
            Some(file) if raw.len() > 1024 => {
                // Keep offsets 64-byte aligned, as exporters do.
                while !self.data.len().is_multiple_of(64) {
                    self.data.push(0);
                }
                let kv = |k: &str, v: String| StringStringEntryProto { key: Some(k.into()), value: Some(v) };
                t.data_location = Some(DataLocation::External as i32);
                t.external_data = vec![
                    kv("location", file.clone()),
                    kv("offset", self.data.len().to_string()),
                    kv("length", raw.len().to_string()),
                ];
                self.data.extend(raw);
            }
            _ => t.raw_data = Some(raw),
        }
        self.inits.push(t);
    }

    pub fn f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        self.raw(name, dims, DataType::Float, data.iter().flat_map(|x| x.to_le_bytes()).collect());
        name.to_string()
    }

    pub fn i64(&mut self, name: &str, dims: &[usize], data: &[i64]) -> String {
        self.raw(name, dims, DataType::Int64, data.iter().flat_map(|x| x.to_le_bytes()).collect());
        name.to_string()
    }
}

/// Row-major [rows, cols] to [cols, rows].
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}
