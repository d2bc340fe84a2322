//! Reads GGUF files (llama.cpp's format): metadata and tensors, with
//! F32, F16, Q8_0 and Q4_1 weights dequantized to float32.

use std::collections::BTreeMap;

use super::bytes::ByteReader;

#[derive(Debug, Clone, PartialEq)]
pub enum Meta {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Meta>),
}

impl Meta {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Meta::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Meta::Float(f) => Some(*f),
            Meta::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Meta::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Meta]> {
        match self {
            Meta::Array(a) => Some(a),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// Dimensions as GGUF lists them, fastest-varying first.
    pub dims: Vec<usize>,
    pub kind: u32,
    pub offset: usize,
}

impl TensorInfo {
    /// Row-major shape (slowest first), as numpy would show it.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().copied().collect()
    }
}

pub struct Gguf<'a> {
    pub meta: BTreeMap<String, Meta>,
    pub tensors: BTreeMap<String, TensorInfo>,
    data: &'a [u8],
    data_start: usize,
}

struct Reader<'a>(ByteReader<'a>);

impl<'a> std::ops::Deref for Reader<'a> {
    type Target = ByteReader<'a>;
    fn deref(&self) -> &ByteReader<'a> {
        &self.0
    }
}
impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Reader<'_> {
    fn string(&mut self) -> Result<String, String> {
        let n = self.u64()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn value(&mut self, t: u32, depth: usize) -> Result<Meta, String> {
        let le = |b: &[u8]| -> [u8; 8] {
            let mut x = [0u8; 8];
            x[..b.len()].copy_from_slice(b);
            x
        };
        Ok(match t {
            0 => Meta::Int(self.take(1)?[0] as i64),
            1 => Meta::Int(self.take(1)?[0] as i8 as i64),
            2 => Meta::Int(u16::from_le_bytes([self.take(1)?[0], self.take(1)?[0]]) as i64),
            3 => Meta::Int(i16::from_le_bytes([self.take(1)?[0], self.take(1)?[0]]) as i64),
            4 => Meta::Int(self.u32()? as i64),
            5 => Meta::Int(self.u32()? as i32 as i64),
            6 => Meta::Float(f32::from_le_bytes(self.take(4)?.try_into().map_err(|_| "short read")?) as f64),
            7 => Meta::Bool(self.take(1)?[0] != 0),
            8 => Meta::Str(self.string()?),
            9 => {
                if depth > 4 {
                    return Err("GGUF arrays nested too deeply".into());
                }
                let at = self.u32()?;
                let n = self.u64()? as usize;
                if n > self.data.len() {
                    return Err("GGUF array longer than the file".into());
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.value(at, depth + 1)?);
                }
                Meta::Array(v)
            }
            10 => Meta::Int(self.u64()? as i64),
            11 => Meta::Int(i64::from_le_bytes(le(self.take(8)?))),
            12 => Meta::Float(f64::from_le_bytes(le(self.take(8)?))),
            other => return Err(format!("unknown GGUF value type {other}")),
        })
    }
}

fn f16(b: [u8; 2]) -> f32 {
    half::f16::from_le_bytes(b).to_f32()
}

impl<'a> Gguf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, String> {
        let mut r = Reader(ByteReader::new(data, "the GGUF file"));
        if r.take(4)? != b"GGUF" {
            return Err("not a GGUF file".into());
        }
        let version = r.u32()?;
        if !(2..=3).contains(&version) {
            return Err(format!("GGUF version {version} is not supported"));
        }
        let n_tensors = r.u64()? as usize;
        let n_kv = r.u64()? as usize;
        let mut meta = BTreeMap::new();
        for _ in 0..n_kv {
            let k = r.string()?;
            let t = r.u32()?;
            meta.insert(k, r.value(t, 0)?);
        }
        let mut tensors = BTreeMap::new();
        for _ in 0..n_tensors {
            let name = r.string()?;
            let nd = r.u32()? as usize;
            if nd > 8 {
                return Err(format!("{name}: {nd} dimensions"));
            }
            let dims = (0..nd).map(|_| r.u64().map(|d| d as usize)).collect::<Result<Vec<_>, _>>()?;
            let kind = r.u32()?;
            let offset = r.u64()? as usize;
            tensors.insert(name, TensorInfo { dims, kind, offset });
        }
        let align = meta.get("general.alignment").and_then(|m| m.as_i64()).unwrap_or(32).max(1) as usize;
        let data_start = r.pos.div_ceil(align) * align;
        Ok(Gguf { meta, tensors, data, data_start })
    }

    pub fn meta_i64(&self, k: &str) -> Result<i64, String> {
        self.meta.get(k).and_then(|m| m.as_i64()).ok_or_else(|| format!("GGUF metadata `{k}` is missing"))
    }
    pub fn meta_f64(&self, k: &str) -> Result<f64, String> {
        self.meta.get(k).and_then(|m| m.as_f64()).ok_or_else(|| format!("GGUF metadata `{k}` is missing"))
    }

    /// A tensor dequantized to float32, in row-major order of [`TensorInfo::shape`].
    pub fn tensor(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), String> {
        let t = self.tensors.get(name).ok_or_else(|| format!("the GGUF file has no tensor `{name}`"))?;
        let n = t
            .dims
            .iter()
            .try_fold(1usize, |a, d| a.checked_mul(*d))
            .filter(|n| *n <= self.data.len())
            .ok_or_else(|| format!("{name}: its dimensions {:?} exceed the file", t.dims))?;
        let start = self.data_start.saturating_add(t.offset);
        let bytes = |len: usize| {
            self.data
                .get(start..start.saturating_add(len))
                .ok_or_else(|| format!("{name}: data past the end of the file"))
        };
        let values = match t.kind {
            0 => bytes(4 * n)?.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            1 => bytes(2 * n)?.chunks_exact(2).map(|c| f16([c[0], c[1]])).collect(),
            8 => {
                // Q8_0: blocks of 32: f16 scale, 32 × i8.
                if !n.is_multiple_of(32) {
                    return Err(format!("{name}: Q8_0 needs a multiple of 32 values"));
                }
                let mut v = Vec::with_capacity(n);
                for blk in bytes(n / 32 * 34)?.chunks_exact(34) {
                    let d = f16([blk[0], blk[1]]);
                    v.extend(blk[2..].iter().map(|q| d * (*q as i8) as f32));
                }
                v
            }
            3 => {
                // Q4_1: blocks of 32: f16 scale d, f16 minimum m, 16 bytes of nibbles;
                // low nibbles are values 0..16, high nibbles 16..32.
                if !n.is_multiple_of(32) {
                    return Err(format!("{name}: Q4_1 needs a multiple of 32 values"));
                }
                let mut v = Vec::with_capacity(n);
                for blk in bytes(n / 32 * 20)?.chunks_exact(20) {
                    let d = f16([blk[0], blk[1]]);
                    let m = f16([blk[2], blk[3]]);
                    let qs = &blk[4..20];
                    v.extend(qs.iter().map(|q| d * (q & 0x0f) as f32 + m));
                    v.extend(qs.iter().map(|q| d * (q >> 4) as f32 + m));
                }
                v
            }
            other => {
                return Err(format!("{name}: GGUF tensor type {other} is not supported (F32, F16, Q8_0 and Q4_1 are)"))
            }
        };
        Ok((t.shape(), values))
    }
}

#[cfg(test)]
#[path = "gguf_test.rs"]
mod tests;
