//! Runtime values. Cheap to clone (shared behind `Arc`), comparable,
//! printable, and digestible into a canonical byte encoding so that two runs
//! that compute the same thing produce the same digests.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use assay_grammar::FnDef;
use ndarray::ArrayD;
use sha2::{Digest, Sha256};

use crate::rhai_module::RhaiModule;
use crate::tensor::Tensor;

/// The longest string a script may build (64 MiB).
pub const MAX_STRING_BYTES: usize = 64 << 20;
/// The most items a list may hold.
pub const MAX_LIST_ITEMS: usize = 10_000_000;
/// The most elements a tensor built by a script may hold (400 MB).
pub const MAX_TENSOR_ELEMENTS: usize = 100_000_000;

/// An RGBA8 picture.
#[derive(Clone)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    /// Row-major RGBA, `width * height * 4` bytes.
    pub pixels: Vec<u8>,
    /// sha256 of the pixels, computed once (an image in a value is shared
    /// and never changed).
    digest: std::sync::OnceLock<[u8; 32]>,
}

impl Image {
    pub fn new(width: u32, height: u32, pixels: Vec<u8>) -> Image {
        Image { width, height, pixels, digest: std::sync::OnceLock::new() }
    }

    /// The sha256 of the pixels.
    pub fn pixels_digest(&self) -> [u8; 32] {
        *self.digest.get_or_init(|| Sha256::digest(&self.pixels).into())
    }
}

impl PartialEq for Image {
    fn eq(&self, other: &Image) -> bool {
        self.width == other.width && self.height == other.height && self.pixels == other.pixels
    }
}

impl Eq for Image {}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Image({}x{})", self.width, self.height)
    }
}

impl Image {
    /// Encodes as PNG (deterministic: fixed compression settings).
    pub fn to_png(&self) -> Result<Vec<u8>, String> {
        self.to_png_with(png::Compression::Default)
    }

    /// PNG bytes encoded quickly (larger files), for views that are not
    /// records (the report, shown images).
    pub fn to_png_fast(&self) -> Result<Vec<u8>, String> {
        self.to_png_with(png::Compression::Fast)
    }

    fn to_png_with(&self, compression: png::Compression) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(png::ColorType::Rgba);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(compression);
            let mut w = enc.write_header().map_err(|e| e.to_string())?;
            w.write_image_data(&self.pixels).map_err(|e| e.to_string())?;
        }
        Ok(out)
    }
}

/// What kind of tool object a handle is: the type scripts and signatures
/// name (`model`, `unit`, `dataset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandleKind {
    Model,
    Unit,
    Dataset,
}

impl HandleKind {
    /// The kind in the user's words.
    pub const fn name(self) -> &'static str {
        match self {
            HandleKind::Model => "model",
            HandleKind::Unit => "unit",
            HandleKind::Dataset => "dataset",
        }
    }
}

impl fmt::Display for HandleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An opaque object owned by a tool: a model, a unit, a data set.
pub trait Handle: Send + Sync + fmt::Debug {
    fn kind(&self) -> HandleKind;
    /// One line for `show` and error messages.
    fn describe(&self) -> String;
    /// Identity for traces and caches: equal digests mean equal behaviour.
    fn digest(&self) -> String;
    /// Read-only properties, `handle.name`.
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }
    fn field_names(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// For handles that are collections (data sets): their size...
    fn count(&self) -> Option<usize> {
        None
    }
    /// ...and a new handle holding just the items at these indices.
    fn select(&self, _indices: &[usize]) -> Option<Value> {
        None
    }
    /// ...and a cheap description of item `i` that `filter` predicates see
    /// (a data set's {index, name, label}, without reading the file).
    fn entry(&self, _i: usize) -> Option<Value> {
        None
    }
    /// The tool that calling the handle means: `u(x)` is `tool(u, x)`.
    fn call_tool(&self) -> Option<&'static str> {
        None
    }
    fn as_any(&self) -> &dyn Any;
}

/// A function defined in the script (named or lambda) with the local
/// variables it captured when it was created.
#[derive(Debug)]
pub struct Closure {
    pub def: Arc<FnDef>,
    pub captured: Vec<(String, Value)>,
}

#[derive(Clone, Debug)]
pub enum Func {
    Script(Arc<Closure>),
    /// A registered tool used as a value, e.g. `map(xs, abs)`.
    Tool(Arc<str>),
    /// A function of a rhai module: `m.f`.
    Rhai(Arc<RhaiModule>, Arc<str>),
}

#[derive(Clone, Debug, Default)]
pub enum Value {
    #[default]
    None,
    Bool(bool),
    Num(f64),
    Str(Arc<str>),
    List(Arc<Vec<Value>>),
    Record(Arc<BTreeMap<String, Value>>),
    /// Integers `start..end`, end exclusive.
    Range(i64, i64),
    Tensor(Tensor),
    Image(Arc<Image>),
    Func(Func),
    Module(Arc<RhaiModule>),
    Handle(Arc<dyn Handle>),
}

impl Value {
    pub fn str(s: impl AsRef<str>) -> Value {
        Value::Str(Arc::from(s.as_ref()))
    }
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::new(items))
    }
    pub fn record<K: Into<String>>(fields: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Record(Arc::new(fields.into_iter().map(|(k, v)| (k.into(), v)).collect()))
    }
    pub fn nums(xs: impl IntoIterator<Item = f64>) -> Value {
        Value::list(xs.into_iter().map(Value::Num).collect())
    }
    pub fn tensor(a: ArrayD<f32>) -> Value {
        Value::Tensor(Tensor::new(a))
    }

    /// The type's name as error messages say it.
    pub fn type_name(&self) -> String {
        match self {
            Value::None => "none".into(),
            Value::Bool(_) => "bool".into(),
            Value::Num(_) => "number".into(),
            Value::Str(_) => "string".into(),
            Value::List(_) => "list".into(),
            Value::Record(_) => "record".into(),
            Value::Range(..) => "range".into(),
            Value::Tensor(_) => "tensor".into(),
            Value::Image(_) => "image".into(),
            Value::Func(_) => "function".into(),
            Value::Module(_) => "module".into(),
            Value::Handle(h) => h.kind().name().into(),
        }
    }

    /// Structural equality; numbers compare by value (so NaN != NaN).
    pub fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Num(a), Value::Num(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.equals(y)),
            (Value::Record(a), Value::Record(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| ka == kb && va.equals(vb))
            }
            (Value::Range(a, b), Value::Range(c, d)) => a == c && b == d,
            (Value::Tensor(a), Value::Tensor(b)) => a == b,
            (Value::Image(a), Value::Image(b)) => a == b,
            (Value::Handle(a), Value::Handle(b)) => a.digest() == b.digest(),
            (Value::Func(a), Value::Func(b)) => func_id(a) == func_id(b),
            (Value::Module(a), Value::Module(b)) => a.digest == b.digest,
            (Value::List(a), Value::Tensor(t)) | (Value::Tensor(t), Value::List(a)) => {
                t.ndim() == 1
                    && t.len() == a.len()
                    && a.iter().zip(t.iter()).all(|(x, y)| matches!(x, Value::Num(n) if *n == *y as f64))
            }
            _ => false,
        }
    }

    /// Text for interpolation and `show`: strings bare, everything else as
    /// written in a script.
    pub fn to_text(&self) -> String {
        match self {
            Value::Str(s) => s.to_string(),
            other => other.to_repr(),
        }
    }

    /// Text as the value would be written in a script (strings quoted).
    pub fn to_repr(&self) -> String {
        let mut s = String::new();
        self.write_repr(&mut s);
        s
    }

    fn write_repr(&self, out: &mut String) {
        const MAX_ITEMS: usize = 20;
        match self {
            Value::None => out.push_str("none"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Num(n) => out.push_str(&format_num(*n)),
            Value::Str(s) => {
                let _ = write!(out, "{:?}", s.as_ref());
            }
            Value::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    if i == MAX_ITEMS && items.len() > MAX_ITEMS + 1 {
                        let _ = write!(out, "... {} more", items.len() - MAX_ITEMS);
                        break;
                    }
                    v.write_repr(out);
                }
                out.push(']');
            }
            Value::Record(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{k}: ");
                    v.write_repr(out);
                }
                out.push('}');
            }
            Value::Range(a, b) => {
                let _ = write!(out, "{a}..{b}");
            }
            Value::Tensor(t) => {
                let shape: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
                let _ = write!(out, "tensor[{}]", shape.join("x"));
                if t.len() <= 16 {
                    let vals: Vec<String> = t.iter().map(|x| format_f32(*x)).collect();
                    let _ = write!(out, " [{}]", vals.join(", "));
                }
            }
            Value::Image(img) => {
                let _ = write!(out, "image {}x{}", img.width, img.height);
            }
            Value::Func(f) => {
                let _ = write!(out, "<function {}>", func_id(f));
            }
            Value::Module(m) => {
                let _ = write!(out, "<module {}>", m.path_display);
            }
            Value::Handle(h) => out.push_str(&h.describe()),
        }
    }

    /// sha256 over the canonical encoding, as lowercase hex.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        self.feed(&mut h);
        hex::encode(h.finalize())
    }

    /// Feeds the canonical encoding: a tag byte, then the content with
    /// lengths prefixed, so different values never share an encoding.
    pub fn feed(&self, h: &mut Sha256) {
        match self {
            Value::None => h.update([0]),
            Value::Bool(b) => h.update([1, *b as u8]),
            Value::Num(n) => {
                h.update([2]);
                let n = if *n == 0.0 { 0.0 } else { *n };
                let bits = if n.is_nan() { f64::NAN.to_bits() } else { n.to_bits() };
                h.update(bits.to_le_bytes());
            }
            Value::Str(s) => {
                h.update([3]);
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
            Value::List(items) => {
                h.update([4]);
                h.update((items.len() as u64).to_le_bytes());
                for v in items.iter() {
                    v.feed(h);
                }
            }
            Value::Record(fields) => {
                h.update([5]);
                h.update((fields.len() as u64).to_le_bytes());
                for (k, v) in fields.iter() {
                    h.update((k.len() as u64).to_le_bytes());
                    h.update(k.as_bytes());
                    v.feed(h);
                }
            }
            Value::Range(a, b) => {
                h.update([6]);
                h.update(a.to_le_bytes());
                h.update(b.to_le_bytes());
            }
            Value::Tensor(t) => {
                h.update([7]);
                h.update((t.ndim() as u64).to_le_bytes());
                for d in t.shape() {
                    h.update((*d as u64).to_le_bytes());
                }
                h.update(t.content_digest());
            }
            Value::Image(img) => {
                h.update([8]);
                h.update(img.width.to_le_bytes());
                h.update(img.height.to_le_bytes());
                h.update(img.pixels_digest());
            }
            Value::Func(f) => {
                h.update([9]);
                h.update(func_id(f).as_bytes());
            }
            Value::Module(m) => {
                h.update([10]);
                h.update(m.digest.as_bytes());
            }
            Value::Handle(hd) => {
                h.update([11]);
                h.update(hd.kind().name().as_bytes());
                h.update(hd.digest().as_bytes());
            }
        }
    }
}

fn func_id(f: &Func) -> String {
    match f {
        Func::Script(c) => match &c.def.name {
            Some(n) => format!("{}@{}", n.node, c.def.span.start),
            None => format!("lambda@{}", c.def.span.start),
        },
        Func::Tool(name) => name.to_string(),
        Func::Rhai(m, name) => format!("{}.{}", m.alias, name),
    }
}

/// Shortest text that reads back as the same f64; integers without a point.
pub fn format_num(n: f64) -> String {
    if n.is_nan() {
        "nan".into()
    } else if n.is_infinite() {
        if n > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else if n == n.trunc() && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n:?}")
    }
}

/// Shortest text that reads back as the same f32.
pub fn format_f32(x: f32) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e7 {
        format!("{}", x as i64)
    } else {
        format!("{x:?}")
    }
}

/// The values a `for` loop or a list tool walks over.
pub fn iter_values(v: &Value) -> Option<Vec<Value>> {
    match v {
        Value::List(items) => Some(items.as_ref().clone()),
        Value::Range(a, b) => Some((*a..*b).map(|i| Value::Num(i as f64)).collect()),
        Value::Str(s) => Some(s.chars().map(|c| Value::str(c.to_string())).collect()),
        Value::Tensor(t) if t.ndim() == 1 => Some(t.iter().map(|x| Value::Num(*x as f64)).collect()),
        Value::Tensor(t) if t.ndim() > 1 => Some(t.outer_iter().map(|row| Value::tensor(row.to_owned())).collect()),
        _ => None,
    }
}
