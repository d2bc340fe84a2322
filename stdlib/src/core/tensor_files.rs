//! Tensors from files prepared elsewhere: NumPy's `.npy` and `.npz`
//! (ndarray-npy; an .npz is a zip of them) and Hugging Face's `.safetensors` (safetensors). Files are
//! read through the sandbox like any read; every dtype those formats carry
//! for numbers becomes an f32 tensor, and a value f32 cannot hold exactly
//! (an integer beyond 2^24, such as a large token id) is refused rather than
//! rounded.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use assay_interpreter::{Type, Value};
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::npy::header::Header;
use ndarray_npy::{ReadNpyError, ReadNpyExt};

use crate::core::declare::{tool, ToolCtx, ToolResult};

/// The most elements one loaded tensor may have (as for `zeros`).
const MAX_ELEMENTS: usize = 100_000_000;
/// Integers up to this size are exact in f32.
const EXACT_INT: f64 = 16_777_216.0;

tool! {
    /// Tensors from a file prepared elsewhere (token ids, embeddings, activations): NumPy `.npy` (one
    /// tensor) or `.npz` (a record of them, compressed or not), or `.safetensors` (a record by tensor
    /// name). Floats (f16, bf16, f32, f64), integers and bools become f32 tensors; an integer too large
    /// for f32 to hold exactly is refused, not rounded. With `name`, the one tensor of that name. Read
    /// through the sandbox like any file.
    ///
    /// ```assay
    /// let ids = load_tensors("fixtures/ids.npy")
    /// assert ids.shape == [2, 4] and ids[0][3] == 50000
    /// ```
    ///
    /// ```assay
    /// let acts = load_tensors("fixtures/acts.npz")
    /// assert acts.resid.shape == [3, 4] and acts.mask == tensor([1, 0, 1])
    /// let w = load_tensors("fixtures/small.safetensors", name: "w")
    /// assert w == tensor([[0, 1, 2], [3, 4, 5]])
    /// ```
    load_tensors in Files -> Type::Any;
    {
        /// a .npy, .npz or .safetensors file under the allowed roots
        path: String,
        /// the tensor to take from an .npz or .safetensors file
        name: Option<String> = None,
    }
    load_tensors
}

fn load_tensors(p: load_tensors::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let path = p.path.clone();
    let bytes = ctx.read_file(&path).map_err(|e| e.at(p.path.name()))?;
    let lower = path.to_ascii_lowercase();
    let mut tensors: BTreeMap<String, Value> = BTreeMap::new();
    let single = if lower.ends_with(".npy") {
        Some(npy(&bytes).map_err(|e| p.path.error(format!("`{path}`: {e}")))?)
    } else if lower.ends_with(".npz") {
        npz(&bytes, &mut tensors).map_err(|e| p.path.error(format!("`{path}`: {e}")))?;
        None
    } else if lower.ends_with(".safetensors") {
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| p.path.error(format!("`{path}` is not a readable .safetensors file: {e}")))?;
        for (n, view) in st.tensors() {
            let t = safetensor(&view).map_err(|e| p.path.error(format!("`{path}`, tensor `{n}`: {e}")))?;
            tensors.insert(n, t);
        }
        None
    } else {
        return Err(p
            .path
            .error(format!("`{path}` is not a .npy, .npz or .safetensors file"))
            .help("save arrays with numpy.save / numpy.savez or safetensors' save_file"));
    };
    match (single, p.name.as_deref()) {
        (Some(t), None) => Ok(t),
        (Some(_), Some(_)) => Err(p
            .name
            .error("an .npy file holds one tensor, which has no name")
            .help("leave `name` out for .npy files")),
        (None, None) => Ok(Value::Record(Arc::new(tensors))),
        (None, Some(want)) => tensors.remove(want).ok_or_else(|| {
            let names: Vec<&str> = tensors.keys().map(|k| k.as_str()).collect();
            let help = match assay_interpreter::closest(want, names.iter().copied()) {
                Some(c) => format!("did you mean `{c}`? the file holds {}", names.join(", ")),
                None => format!("the file holds {}", names.join(", ")),
            };
            p.name.error(format!("`{path}` has no tensor named `{want}`")).help(help)
        }),
    }
}

/// f32 values from any numeric element, refusing what f32 cannot hold exactly.
fn to_f32<T: Copy>(
    shape: &[usize],
    data: impl Iterator<Item = T>,
    f: impl Fn(T) -> f64,
    exact: bool,
) -> Result<Value, String> {
    let n: usize = shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d)).ok_or("the shape is too large")?;
    if n > MAX_ELEMENTS {
        return Err(format!("a tensor of shape {shape:?} has more than {MAX_ELEMENTS} elements"));
    }
    let mut out = Vec::with_capacity(n);
    for x in data {
        let v = f(x);
        if exact && v.abs() > EXACT_INT {
            return Err(format!("the integer {v} cannot be held exactly by an f32 tensor (integers up to 2^24 can)"));
        }
        out.push(v as f32);
    }
    ArrayD::from_shape_vec(IxDyn(shape), out).map(Value::tensor).map_err(|e| e.to_string())
}

/// An `.npy` array: its header is read first, so a header that claims more
/// elements than the file holds (or than a tensor may have) is refused
/// before anything is allocated.
fn npy(bytes: &[u8]) -> Result<Value, String> {
    // The preamble's header length is checked against the file first: the
    // reader would otherwise allocate what a 20-byte file claims (4 GiB).
    let (start, header_len) = match bytes.get(..8) {
        Some([0x93, b'N', b'U', b'M', b'P', b'Y', 1, _]) => {
            (10usize, bytes.get(8..10).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize))
        }
        Some([0x93, b'N', b'U', b'M', b'P', b'Y', 2 | 3, _]) => {
            (12usize, bytes.get(8..12).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize))
        }
        _ => return Err("not a readable .npy file: it does not start with the .npy magic and a known version".into()),
    };
    match header_len {
        Some(h) if start.saturating_add(h) <= bytes.len() => {}
        Some(h) => {
            return Err(format!(
                "not a readable .npy file: its header claims {h} bytes, but the file holds {} bytes",
                bytes.len()
            ))
        }
        None => return Err("not a readable .npy file: it ends inside its preamble".into()),
    }
    let mut cur = Cursor::new(bytes);
    let header = Header::from_reader(&mut cur).map_err(|e| format!("not a readable .npy file: {e}"))?;
    let n = header.shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d)).ok_or("its shape is too large")?;
    if n > MAX_ELEMENTS {
        return Err(format!("a tensor of shape {:?} has more than {MAX_ELEMENTS} elements", header.shape));
    }
    let left = bytes.len().saturating_sub(cur.position() as usize);
    if n > left {
        return Err(format!("its header says {:?} but the file holds only {left} bytes of data", header.shape));
    }
    macro_rules! try_type {
        ($t:ty, $f:expr, $exact:expr) => {
            match ArrayD::<$t>::read_npy(bytes) {
                Ok(a) => {
                    let shape = a.shape().to_vec();
                    return to_f32(&shape, a.iter().copied(), $f, $exact);
                }
                Err(ReadNpyError::WrongDescriptor(_)) => {}
                Err(e) => return Err(format!("not a readable .npy array: {e}")),
            }
        };
    }
    try_type!(f32, |x: f32| x as f64, false);
    try_type!(f64, |x: f64| x, false);
    try_type!(i64, |x: i64| x as f64, true);
    try_type!(i32, |x: i32| x as f64, true);
    try_type!(i16, |x: i16| x as f64, false);
    try_type!(i8, |x: i8| x as f64, false);
    try_type!(u64, |x: u64| x as f64, true);
    try_type!(u32, |x: u32| x as f64, true);
    try_type!(u16, |x: u16| x as f64, false);
    try_type!(u8, |x: u8| x as f64, false);
    try_type!(bool, |x: bool| f64::from(u8::from(x)), false);
    Err(format!("its dtype {} is not a number type Assay reads (floats, integers, bools)", header.type_descriptor))
}

/// The arrays of an `.npz` file (a zip of `.npy` files, stored or
/// deflated), each read whole within the element limit before parsing.
fn npz(bytes: &[u8], out: &mut BTreeMap<String, Value>) -> Result<(), String> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not a readable .npz file: {e}"))?;
    // An array holds at most MAX_ELEMENTS of at most 8 bytes, plus its header.
    let cap = (MAX_ELEMENTS as u64) * 8 + (1 << 20);
    for i in 0..z.len() {
        let mut f = z.by_index(i).map_err(|e| format!("not a readable .npz file: {e}"))?;
        let name = f.name().to_string();
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        let mut data = Vec::new();
        f.by_ref().take(cap + 1).read_to_end(&mut data).map_err(|e| format!("array `{key}`: {e}"))?;
        if data.len() as u64 > cap {
            return Err(format!("array `{key}` is larger than a tensor may be"));
        }
        out.insert(key.clone(), npy(&data).map_err(|e| format!("array `{key}`: {e}"))?);
    }
    Ok(())
}

fn safetensor(view: &safetensors::tensor::TensorView) -> Result<Value, String> {
    use safetensors::Dtype;
    let shape = view.shape().to_vec();
    let d = view.data();
    macro_rules! le {
        ($t:ty, $n:expr) => {
            d.chunks_exact($n).map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or([0; $n])))
        };
    }
    match view.dtype() {
        Dtype::F32 => to_f32(&shape, le!(f32, 4), |x| x as f64, false),
        Dtype::F64 => to_f32(&shape, le!(f64, 8), |x| x, false),
        Dtype::F16 => to_f32(&shape, le!(u16, 2), |x| half::f16::from_bits(x).to_f64(), false),
        Dtype::BF16 => to_f32(&shape, le!(u16, 2), |x| half::bf16::from_bits(x).to_f64(), false),
        Dtype::I64 => to_f32(&shape, le!(i64, 8), |x| x as f64, true),
        Dtype::I32 => to_f32(&shape, le!(i32, 4), |x| x as f64, true),
        Dtype::I16 => to_f32(&shape, le!(i16, 2), |x| x as f64, false),
        Dtype::I8 => to_f32(&shape, d.iter().map(|b| *b as i8), |x| x as f64, false),
        Dtype::U64 => to_f32(&shape, le!(u64, 8), |x| x as f64, true),
        Dtype::U32 => to_f32(&shape, le!(u32, 4), |x| x as f64, true),
        Dtype::U16 => to_f32(&shape, le!(u16, 2), |x| x as f64, false),
        Dtype::U8 => to_f32(&shape, d.iter().copied(), |x| x as f64, false),
        Dtype::BOOL => to_f32(&shape, d.iter().copied(), |x| f64::from(u8::from(x != 0)), false),
        other => Err(format!("its dtype {other:?} is not a number type Assay reads")),
    }
}
