//! A model's inputs and outputs as declared and as ONNX Runtime holds
//! them: element types, shapes, the KV cache's slots, and the conversions
//! between arrays and ONNX Runtime values.

use crate::onnx::error::ModelError;
use crate::onnx::proto::{tensor_proto, ModelProto};
use assay_interpreter::Backing;
use ndarray::ArrayD;
use ndarray::ArrayViewD;
use ort::value::{DynValue, Tensor, TensorElementType, ValueType};

/// An f32 output left in ONNX Runtime's buffer.
pub(super) struct OrtF32(pub(super) Tensor<f32>);

impl Backing for OrtF32 {
    fn view(&self) -> ArrayViewD<'_, f32> {
        self.0.extract_array()
    }
}

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Fixed(i64),
    Symbolic(String),
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbolic(s) if s.is_empty() => write!(f, "?"),
            Dim::Symbolic(s) => write!(f, "{s}"),
        }
    }
}

/// A model input, output or captured tensor as ONNX Runtime describes it.
#[derive(Debug, Clone)]
pub struct Port {
    pub name: String,
    pub dtype: String,
    pub elem: Option<TensorElementType>,
    pub shape: Option<Vec<Dim>>,
}

impl Port {
    pub(super) fn from_outlet(name: &str, ty: &ValueType) -> Port {
        match ty {
            ValueType::Tensor { ty, shape, dimension_symbols } => {
                let dims = shape
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        if *d >= 0 {
                            Dim::Fixed(*d)
                        } else {
                            Dim::Symbolic(dimension_symbols.get(i).cloned().unwrap_or_default())
                        }
                    })
                    .collect();
                Port { name: name.into(), dtype: elem_str(*ty), elem: Some(*ty), shape: Some(dims) }
            }
            other => Port { name: name.into(), dtype: format!("{other:?}").to_lowercase(), elem: None, shape: None },
        }
    }

    pub fn shape_text(&self) -> String {
        match &self.shape {
            Some(d) => format!("[{}]", d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
            None => "?".into(),
        }
    }
}

pub(crate) fn elem_str(t: TensorElementType) -> String {
    use TensorElementType as T;
    match t {
        T::Float32 => "float32",
        T::Float64 => "float64",
        T::Float16 => "float16",
        T::Bfloat16 => "bfloat16",
        T::Int8 => "int8",
        T::Int16 => "int16",
        T::Int32 => "int32",
        T::Int64 => "int64",
        T::Uint8 => "uint8",
        T::Uint16 => "uint16",
        T::Uint32 => "uint32",
        T::Uint64 => "uint64",
        T::Bool => "bool",
        T::String => "string",
        _ => "other",
    }
    .to_string()
}

pub(super) fn onnx_elem(t: TensorElementType) -> Option<i32> {
    use tensor_proto::DataType as D;
    use TensorElementType as T;
    Some(match t {
        T::Float32 => D::Float,
        T::Float64 => D::Double,
        T::Float16 => D::Float16,
        T::Bfloat16 => D::Bfloat16,
        _ => return None,
    } as i32)
}

/// A KV cache in the convention of Hugging Face Optimum's decoder exports:
/// each input `past_key_values.L.key` / `.value` [N, heads, P, head_dim] has
/// an output `present.L.key` / `.value` [N, heads, P+T, head_dim], where P
/// is the number of earlier tokens and T the number fed now.
#[derive(Debug, Clone, PartialEq)]
pub struct KvSlot {
    pub past: String,
    pub present: String,
    pub heads: usize,
    pub head_dim: usize,
}

/// The model's KV-cache slots, if every `past_key_values.*` input has its
/// `present.*` output and fixed head sizes.
pub(super) fn kv_slots(inputs: &[Port], outputs: &[Port]) -> Option<Vec<KvSlot>> {
    let mut slots = Vec::new();
    for p in inputs.iter().filter(|p| p.name.starts_with("past_key_values.")) {
        let rest = &p.name["past_key_values.".len()..];
        let present = format!("present.{rest}");
        let fixed = |i: usize| match p.shape.as_ref().and_then(|s| s.get(i)) {
            Some(Dim::Fixed(n)) if *n > 0 => Some(*n as usize),
            _ => None,
        };
        let rank4 = p.shape.as_ref().is_some_and(|s| s.len() == 4);
        if !rank4 || !outputs.iter().any(|o| o.name == present) {
            return None;
        }
        slots.push(KvSlot { past: p.name.clone(), present, heads: fixed(1)?, head_dim: fixed(3)? });
    }
    (!slots.is_empty()).then_some(slots)
}

/// A graph's inputs (less initializers, as ONNX Runtime lists them) and
/// outputs with their declared element types and shapes.
pub(super) fn declared_ports(m: &ModelProto) -> Result<(Vec<Port>, Vec<Port>), ModelError> {
    use crate::onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
    use crate::onnx::proto::type_proto;
    let g = m.graph.as_ref().ok_or_else(|| ModelError::Graph("the model has no graph".into()))?;
    let port = |v: &crate::onnx::proto::ValueInfoProto| -> Result<Port, ModelError> {
        let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            return Err(ModelError::Graph(format!("`{}` is not declared as a tensor", v.name())));
        };
        let elem = elem_from_onnx(t.elem_type());
        let shape = t.shape.as_ref().map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(DimValue::DimValue(n)) if *n >= 0 => Dim::Fixed(*n),
                    Some(DimValue::DimParam(p)) => Dim::Symbolic(p.clone()),
                    _ => Dim::Symbolic(String::new()),
                })
                .collect()
        });
        Ok(Port {
            name: v.name().to_string(),
            dtype: elem.map(elem_str).unwrap_or_else(|| "other".into()),
            elem,
            shape: Some(shape.unwrap_or_default()),
        })
    };
    let inits: std::collections::HashSet<&str> = g.initializer.iter().map(|t| t.name()).collect();
    let inputs = g.input.iter().filter(|v| !inits.contains(v.name())).map(port).collect::<Result<_, _>>()?;
    let outputs = g.output.iter().map(port).collect::<Result<_, _>>()?;
    Ok((inputs, outputs))
}

pub(super) fn elem_from_onnx(t: i32) -> Option<TensorElementType> {
    use tensor_proto::DataType as D;
    use TensorElementType as T;
    let d = D::try_from(t).ok()?;
    Some(match d {
        D::Float => T::Float32,
        D::Double => T::Float64,
        D::Float16 => T::Float16,
        D::Bfloat16 => T::Bfloat16,
        D::Int8 => T::Int8,
        D::Int16 => T::Int16,
        D::Int32 => T::Int32,
        D::Int64 => T::Int64,
        D::Uint8 => T::Uint8,
        D::Uint16 => T::Uint16,
        D::Uint32 => T::Uint32,
        D::Uint64 => T::Uint64,
        D::Bool => T::Bool,
        D::String => T::String,
        _ => return None,
    })
}

/// The ONNX type of a port: fixed dimensions kept, symbolic ones named.
pub(super) fn port_type(port: &Port, elem: i32) -> crate::onnx::proto::TypeProto {
    use crate::onnx::proto::tensor_shape_proto::{dimension::Value as DimValue, Dimension};
    use crate::onnx::proto::{type_proto, TensorShapeProto, TypeProto};
    let shape = port.shape.as_ref().map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Dim::Fixed(n) => DimValue::DimValue(*n),
                    Dim::Symbolic(s) => DimValue::DimParam(if s.is_empty() { "?".into() } else { s.clone() }),
                }),
                denotation: None,
            })
            .collect(),
    });
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: Some(elem), shape })),
        denotation: None,
    }
}

pub(super) fn check_shape(port: &Port, got: &[usize]) -> Result<(), ModelError> {
    // A patch's mask and new value may take any shape that broadcasts (they
    // are declared without one); ONNX Runtime checks them.
    if port.name.starts_with("assay::mask::")
        || port.name.starts_with("assay::new::")
        || port.name.starts_with("assay::add::")
    {
        return Ok(());
    }
    let Some(dims) = &port.shape else { return Ok(()) };
    let fits = dims.len() == got.len()
        && dims.iter().zip(got).all(|(d, g)| match d {
            Dim::Fixed(n) => *n as usize == *g,
            Dim::Symbolic(_) => true,
        });
    if fits {
        Ok(())
    } else {
        Err(ModelError::Input(format!(
            "input `{}` must have shape {} ({}), got [{}]",
            port.name,
            port.shape_text(),
            port.dtype,
            got.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(", ")
        )))
    }
}

pub(super) fn to_ort(arr: ArrayD<f32>, port: &Port) -> Result<DynValue, String> {
    use TensorElementType as T;
    let e = |r: ort::Result<DynValue>| r.map_err(|e| e.to_string());
    match port.elem {
        Some(T::Float32) | None => e(Tensor::from_array(arr).map(|t| t.into_dyn())),
        Some(T::Float64) => e(Tensor::from_array(arr.mapv(|x| x as f64)).map(|t| t.into_dyn())),
        Some(T::Int64) => e(Tensor::from_array(arr.mapv(|x| x as i64)).map(|t| t.into_dyn())),
        Some(T::Int32) => e(Tensor::from_array(arr.mapv(|x| x as i32)).map(|t| t.into_dyn())),
        Some(T::Int8) => e(Tensor::from_array(arr.mapv(|x| x as i8)).map(|t| t.into_dyn())),
        Some(T::Uint8) => e(Tensor::from_array(arr.mapv(|x| x as u8)).map(|t| t.into_dyn())),
        Some(T::Bool) => e(Tensor::from_array(arr.mapv(|x| x != 0.0)).map(|t| t.into_dyn())),
        Some(other) => {
            Err(format!("input `{}` takes {} values, which Assay cannot feed yet", port.name, elem_str(other)))
        }
    }
}

pub(super) fn from_ort(v: &DynValue) -> Result<ArrayD<f32>, String> {
    use TensorElementType as T;
    let ty = match v.dtype() {
        ValueType::Tensor { ty, .. } => *ty,
        other => return Err(format!("is a {other:?}, not a tensor")),
    };
    let e = |err: ort::Error| err.to_string();
    Ok(match ty {
        T::Float32 => v.try_extract_array::<f32>().map_err(e)?.to_owned(),
        T::Float64 => v.try_extract_array::<f64>().map_err(e)?.mapv(|x| x as f32),
        T::Int64 => v.try_extract_array::<i64>().map_err(e)?.mapv(|x| x as f32),
        T::Int32 => v.try_extract_array::<i32>().map_err(e)?.mapv(|x| x as f32),
        T::Int8 => v.try_extract_array::<i8>().map_err(e)?.mapv(|x| x as f32),
        T::Uint8 => v.try_extract_array::<u8>().map_err(e)?.mapv(|x| x as f32),
        T::Bool => v.try_extract_array::<bool>().map_err(e)?.mapv(|x| if x { 1.0 } else { 0.0 }),
        other => return Err(format!("holds {} values, which Assay cannot read yet", elem_str(other))),
    })
}
