//! Reads a PyTorch state dict saved in the legacy (pre-1.6, non-zip)
//! format without Python or torch: a small pickle machine for the opcodes
//! such files use, then the raw storages that follow the pickles. It never
//! executes anything: globals are only names, and only tensor rebuilding
//! and OrderedDict are understood.

use std::collections::HashMap;

use super::bytes::ByteReader;

/// A pickled value, as far as a state dict needs.
#[derive(Debug, Clone)]
enum P {
    None,
    /// Bools and floats appear in state dicts but carry nothing Assay needs.
    Scalar,
    Int(i128),
    Str(String),
    Tuple(Vec<P>),
    List(Vec<P>),
    Dict(Vec<(P, P)>),
    Global(String, String),
    Persistent(Box<P>),
    Tensor(TensorRef),
    /// A call Assay does not interpret (kept only so the stack stays right).
    Opaque,
    Mark,
}

/// A tensor in the state dict: a view into a storage.
#[derive(Debug, Clone)]
pub struct TensorRef {
    pub storage: String,
    pub kind: String,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

const MAGIC: i128 = 0x1950a86a20f9469cfc6c;

struct Machine<'a>(ByteReader<'a>);

impl<'a> std::ops::Deref for Machine<'a> {
    type Target = ByteReader<'a>;
    fn deref(&self) -> &ByteReader<'a> {
        &self.0
    }
}
impl std::ops::DerefMut for Machine<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Machine<'_> {
    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|b| *b == b'\n').ok_or("unterminated name in a pickle")?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    /// Runs one pickle to its STOP and returns the value.
    fn load(&mut self) -> Result<P, String> {
        let mut vm = Stack::default();
        loop {
            match self.u8()? {
                b'.' => return vm.pop(), // STOP
                op => self.step(op, &mut vm)?,
            }
        }
    }

    /// One opcode: its operands read from the pickle, its effect on `vm`.
    fn step(&mut self, op: u8, vm: &mut Stack) -> Result<(), String> {
        match op {
            0x80 => {
                self.u8()?; // PROTO
            }
            b'(' => vm.stack.push(P::Mark),
            b'N' => vm.stack.push(P::None),
            0x88 | 0x89 => vm.stack.push(P::Scalar),
            b'K' => {
                let v = self.u8()?;
                vm.stack.push(P::Int(v as i128))
            }
            b'M' => {
                let v = self.u16()?;
                vm.stack.push(P::Int(v as i128))
            }
            b'J' => {
                let v = self.u32()? as i32;
                vm.stack.push(P::Int(v as i128))
            }
            0x8a => {
                // LONG1: n bytes, little-endian two's complement.
                let n = self.u8()? as usize;
                let b = self.take(n)?;
                if n > 16 {
                    return Err("integer too large".into());
                }
                let mut buf = [if b.last().is_some_and(|x| x & 0x80 != 0) { 0xff } else { 0 }; 16];
                buf[..n].copy_from_slice(b);
                vm.stack.push(P::Int(i128::from_le_bytes(buf)));
            }
            b'G' => {
                self.take(8)?;
                vm.stack.push(P::Scalar);
            }
            b'X' => {
                let n = self.u32()? as usize;
                let s = String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "bad UTF-8 in a pickle string")?;
                vm.stack.push(P::Str(s));
            }
            b'q' => {
                let i = self.u8()? as u32;
                vm.put(i, "BINPUT")?;
            }
            b'r' => {
                let i = self.u32()?;
                vm.put(i, "LONG_BINPUT")?;
            }
            b'h' => {
                let i = self.u8()? as u32;
                vm.get(i, "BINGET")?;
            }
            b'j' => {
                let i = self.u32()?;
                vm.get(i, "LONG_BINGET")?;
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                vm.stack.push(P::Global(module, name));
            }
            other => vm.build(other)?,
        }
        Ok(())
    }
}

/// The pickle machine's stack and memo.
#[derive(Default)]
struct Stack {
    stack: Vec<P>,
    memo: HashMap<u32, P>,
}

impl Stack {
    fn pop(&mut self) -> Result<P, String> {
        self.stack.pop().ok_or_else(|| "pickle stack underflow".to_string())
    }

    /// The items above the topmost MARK, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<P>, String> {
        let m = self.stack.iter().rposition(|p| matches!(p, P::Mark)).ok_or("pickle MARK missing")?;
        let items = self.stack.split_off(m + 1);
        self.stack.pop();
        Ok(items)
    }

    /// Keeps the top of the stack in the memo under `i`.
    fn put(&mut self, i: u32, op: &str) -> Result<(), String> {
        let top = self.stack.last().cloned().ok_or_else(|| format!("{op} on an empty stack"))?;
        self.memo.insert(i, top);
        Ok(())
    }

    /// Pushes the memo's value `i`.
    fn get(&mut self, i: u32, op: &str) -> Result<(), String> {
        let v = self.memo.get(&i).cloned().ok_or_else(|| format!("{op} of an unknown memo"))?;
        self.stack.push(v);
        Ok(())
    }

    /// The opcodes without operands that build containers and objects.
    fn build(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'}' => self.stack.push(P::Dict(Vec::new())),
            b']' => self.stack.push(P::List(Vec::new())),
            b')' => self.stack.push(P::Tuple(Vec::new())),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(P::Tuple(items));
            }
            0x85..=0x87 => {
                // TUPLE1, TUPLE2, TUPLE3.
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.stack.push(P::Tuple(items));
            }
            b'Q' => {
                let pid = self.pop()?;
                self.stack.push(P::Persistent(Box::new(pid)));
            }
            b'R' => {
                let args = self.pop()?;
                let f = self.pop()?;
                self.stack.push(reduce(f, args)?);
            }
            b'b' => {
                // BUILD: state for the object below; a state dict's metadata. Ignored.
                self.pop()?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                match self.stack.last_mut() {
                    Some(P::Dict(d)) => d.push((k, v)),
                    _ => return Err("SETITEM on something that is not a dict".into()),
                }
            }
            b'u' => {
                let items = self.pop_mark()?;
                match self.stack.last_mut() {
                    Some(P::Dict(d)) => {
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            d.push((k, v));
                        }
                    }
                    _ => return Err("SETITEMS on something that is not a dict".into()),
                }
            }
            b'a' => {
                let v = self.pop()?;
                match self.stack.last_mut() {
                    Some(P::List(l)) => l.push(v),
                    _ => return Err("APPEND on something that is not a list".into()),
                }
            }
            b'e' => {
                let items = self.pop_mark()?;
                match self.stack.last_mut() {
                    Some(P::List(l)) => l.extend(items),
                    _ => return Err("APPENDS on something that is not a list".into()),
                }
            }
            other => return Err(format!("pickle opcode 0x{other:02x} is not supported in a state dict")),
        }
        Ok(())
    }
}

fn int(p: &P) -> Result<usize, String> {
    match p {
        P::Int(i) if *i >= 0 && *i <= usize::MAX as i128 => Ok(*i as usize),
        other => Err(format!("expected a size, found {other:?}")),
    }
}

fn ints(p: &P) -> Result<Vec<usize>, String> {
    match p {
        P::Tuple(v) | P::List(v) => v.iter().map(int).collect(),
        other => Err(format!("expected a tuple of sizes, found {other:?}")),
    }
}

/// REDUCE for the two callables a state dict uses.
fn reduce(f: P, args: P) -> Result<P, String> {
    match (&f, &args) {
        (P::Global(m, n), _) if m == "collections" && n == "OrderedDict" => Ok(P::Dict(Vec::new())),
        (P::Global(m, n), P::Tuple(a)) if m == "torch._utils" && n == "_rebuild_tensor_v2" && a.len() >= 4 => {
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            let (storage, kind) = match &a[0] {
                P::Persistent(pid) => match pid.as_ref() {
                    P::Tuple(t) if t.len() >= 3 => match (&t[1], &t[2]) {
                        (P::Global(_, kind), P::Str(key)) => (key.clone(), kind.clone()),
                        _ => return Err("unexpected storage id".into()),
                    },
                    _ => return Err("unexpected persistent id".into()),
                },
                _ => return Err("a tensor without a storage".into()),
            };
            Ok(P::Tensor(TensorRef { storage, kind, offset: int(&a[1])?, shape: ints(&a[2])?, stride: ints(&a[3])? }))
        }
        _ => Ok(P::Opaque),
    }
}

fn elem_size(kind: &str) -> Result<usize, String> {
    Ok(match kind {
        "FloatStorage" => 4,
        "DoubleStorage" | "LongStorage" => 8,
        "IntStorage" => 4,
        "HalfStorage" | "ShortStorage" => 2,
        "ByteStorage" | "CharStorage" | "BoolStorage" => 1,
        other => return Err(format!("unknown storage type {other}")),
    })
}

/// The float32 tensors of a legacy state dict, by name, with shapes.
/// A named float32 tensor: (name, shape, row-major values).
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

pub fn read_state_dict(data: &[u8]) -> Result<Vec<NamedTensor>, String> {
    let mut m = Machine(ByteReader::new(data, "the checkpoint"));
    match m.load()? {
        P::Int(MAGIC) => {}
        _ => return Err("not a legacy PyTorch file (bad magic number)".into()),
    }
    let _protocol = m.load()?;
    let _sys_info = m.load()?;
    let dict = match m.load()? {
        P::Dict(d) => d,
        _ => return Err("the file does not hold a state dict".into()),
    };
    let keys = match m.load()? {
        P::List(k) => k,
        _ => return Err("the storage key list is missing".into()),
    };
    // Storage kinds by key, from the tensors that use them.
    let mut kinds: HashMap<String, String> = HashMap::new();
    for (_, v) in &dict {
        if let P::Tensor(t) = v {
            kinds.insert(t.storage.clone(), t.kind.clone());
        }
    }
    // Each storage: u64 element count, then the raw elements.
    let mut storages: HashMap<String, (usize, usize)> = HashMap::new();
    for k in keys {
        let P::Str(key) = k else { return Err("a storage key is not a string".into()) };
        let size = elem_size(kinds.get(&key).map(|s| s.as_str()).unwrap_or("FloatStorage"))?;
        let n = u64::from_le_bytes(m.take(8)?.try_into().map_err(|_| "short read")?) as usize;
        let start = m.pos;
        m.take(n.checked_mul(size).ok_or("storage too large")?)?;
        storages.insert(key, (start, n));
    }
    let mut out = Vec::new();
    for (k, v) in dict {
        let (P::Str(name), P::Tensor(t)) = (k, v) else { continue };
        if t.kind != "FloatStorage" {
            continue;
        }
        let &(start, n) =
            storages.get(&t.storage).ok_or_else(|| format!("{name}: storage {} is missing", t.storage))?;
        let count = t
            .shape
            .iter()
            .try_fold(1usize, |a, d| a.checked_mul(*d))
            .ok_or_else(|| format!("{name}: its shape {:?} overflows", t.shape))?;
        if t.stride.len() != t.shape.len() {
            return Err(format!("{name}: shape and stride disagree"));
        }
        // The furthest element the view touches must lie inside the storage.
        let last = t
            .shape
            .iter()
            .zip(&t.stride)
            .fold(0usize, |acc, (d, s)| acc.saturating_add(d.saturating_sub(1).saturating_mul(*s)));
        if count > 0 && t.offset.saturating_add(last) >= n {
            return Err(format!("{name}: tensor runs past its storage"));
        }
        let read = |i: usize| {
            let at = start + 4 * i;
            f32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
        };
        // Gather in row-major order through the strides (checkpoints converted
        // from TensorFlow keep their original layout as a strided view).
        let mut values = Vec::with_capacity(count);
        let mut idx = vec![0usize; t.shape.len()];
        for _ in 0..count {
            let off: usize = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
            values.push(read(off));
            for k in (0..idx.len()).rev() {
                idx[k] += 1;
                if idx[k] < t.shape[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
        out.push((name, t.shape, values));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_other_files() {
        assert!(read_state_dict(b"").is_err());
        assert!(read_state_dict(b"PK\x03\x04 a zip file").is_err());
        // A pickle of the integer 5, not the magic number.
        assert!(read_state_dict(b"\x80\x02K\x05.").unwrap_err().contains("magic"));
    }
}
