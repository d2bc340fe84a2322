//! A model's external weights read once, as a stream: each initializer's
//! bytes are made into what the sessions use (a shared float value, or
//! bytes to put inline in the graph) as the file goes by, and the file's
//! digest is of exactly those bytes (`ToolCtx::read_file_with`). Nothing
//! holds the whole file: loading a model peaks near one copy of its weights
//! instead of two (the file's bytes and the values made from them), and a
//! weights file may be larger than a whole-file read allows.

use std::sync::Arc;

/// Float initializers smaller than this stay each session's own.
pub(crate) const SHARE_AT_LEAST: usize = 4096;

/// The most bytes of unshared external initializers put inline in the graph
/// (past it, a model's weights files are read and kept whole instead).
pub(crate) const INLINE_AT_MOST: u64 = 64 << 20;
use crate::onnx::proto::{ModelProto, TensorProto};

/// One initializer's place in its file.
struct Item {
    name: String,
    offset: u64,
    length: u64,
    /// A float tensor large enough to be shared: its shape.
    shared: Option<Vec<i64>>,
}

/// What a weights file gave: the shared float values, and the other
/// initializers' bytes (to put inline).
#[derive(Default)]
pub struct Streamed {
    pub shared: Vec<(String, Arc<ort::value::DynValue>)>,
    pub inline: Vec<(String, Vec<u8>)>,
}

/// Reads one weights file's initializers in file order.
pub struct WeightStream {
    items: Vec<Item>,
    at: usize,
    pos: u64,
    cur: Vec<u8>,
    out: Streamed,
}

fn external(t: &TensorProto, key: &str) -> Option<String> {
    t.external_data.iter().find(|e| e.key() == key).map(|e| e.value().to_string())
}

/// Bytes per element of an ONNX data type (0 for types of no fixed size).
fn element_bytes(data_type: i32) -> u64 {
    match data_type {
        2 | 3 | 9 => 1,
        4 | 5 | 10 | 16 => 2,
        1 | 6 | 12 => 4,
        7 | 11 | 13 => 8,
        _ => 0,
    }
}

impl WeightStream {
    /// The plan for `file`, one of `proto`'s external-data files: `None`
    /// where it cannot be streamed (ranges that overlap or are unknown, or
    /// more than [`INLINE_AT_MOST`] of bytes that would go inline); such a
    /// model is read whole, as before.
    pub fn plan(proto: &ModelProto, file: &str) -> Option<WeightStream> {
        let g = proto.graph.as_ref()?;
        let mut items = Vec::new();
        let mut inline = 0u64;
        for t in g.initializer.iter().filter(|t| t.data_location.unwrap_or(0) == 1) {
            if external(t, "location").as_deref() != Some(file) {
                continue;
            }
            let elements = t.dims.iter().map(|d| u64::try_from(*d).ok()).product::<Option<u64>>()?;
            let size = elements.checked_mul(element_bytes(t.data_type()))?;
            let offset: u64 = match external(t, "offset") {
                Some(o) => o.parse().ok()?,
                None => 0,
            };
            let length: u64 = match external(t, "length") {
                Some(l) => l.parse().ok()?,
                None => size,
            };
            offset.checked_add(length)?;
            let float = t.data_type() == 1 && length == size && length >= SHARE_AT_LEAST as u64;
            if !float {
                inline += length;
            }
            items.push(Item { name: t.name().to_string(), offset, length, shared: float.then(|| t.dims.clone()) });
        }
        if inline > INLINE_AT_MOST {
            return None;
        }
        items.sort_by_key(|i| i.offset);
        let overlap =
            items.windows(2).any(|w| w[0].offset.checked_add(w[0].length).is_none_or(|end| end > w[1].offset));
        if overlap {
            return None;
        }
        Some(WeightStream { items, at: 0, pos: 0, cur: Vec::new(), out: Streamed::default() })
    }

    /// The file's next bytes.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), String> {
        loop {
            let Some(item) = self.items.get(self.at) else { return Ok(()) };
            let end = item.offset + item.length;
            if self.pos == end {
                self.complete()?;
                continue;
            }
            if chunk.is_empty() {
                return Ok(());
            }
            if self.pos < item.offset {
                let skip = (item.offset - self.pos).min(chunk.len() as u64) as usize;
                chunk = &chunk[skip..];
                self.pos += skip as u64;
                continue;
            }
            let take = (end - self.pos).min(chunk.len() as u64) as usize;
            if self.cur.is_empty() {
                self.cur.reserve_exact(item.length as usize);
            }
            self.cur.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            self.pos += take as u64;
        }
    }

    fn complete(&mut self) -> Result<(), String> {
        let bytes = std::mem::take(&mut self.cur);
        let Some(item) = self.items.get(self.at) else { return Ok(()) };
        self.at += 1;
        match &item.shared {
            Some(shape) => {
                let floats: Vec<f32> =
                    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                drop(bytes);
                let v = ort::value::Tensor::from_array((shape.clone(), floats))
                    .map_err(|e| format!("the weights `{}`: {e}", item.name))?;
                self.out.shared.push((item.name.clone(), Arc::new(v.into_dyn())));
            }
            None => self.out.inline.push((item.name.clone(), bytes)),
        }
        Ok(())
    }

    /// What the file gave, once all of it was fed; an initializer the file
    /// ends before is an error naming it.
    pub fn finish(mut self, file: &str) -> Result<Streamed, String> {
        self.feed(&[])?;
        if let Some(item) = self.items.get(self.at) {
            return Err(format!(
                "the weights file `{file}` ends at byte {} before the initializer `{}` (bytes {}..{})",
                self.pos,
                item.name,
                item.offset,
                item.offset + item.length
            ));
        }
        Ok(self.out)
    }
}

/// `proto` with the streamed initializers that are not shared made inline.
pub(super) fn inline_streamed(proto: &ModelProto, inline: &[(String, Vec<u8>)]) -> ModelProto {
    let by_name: std::collections::HashMap<&str, &Vec<u8>> = inline.iter().map(|(n, b)| (n.as_str(), b)).collect();
    let mut out = proto.clone();
    if let Some(g) = out.graph.as_mut() {
        for t in g.initializer.iter_mut().filter(|t| t.data_location.unwrap_or(0) == 1) {
            if let Some(bytes) = by_name.get(t.name()) {
                t.raw_data = Some((*bytes).clone());
                t.external_data.clear();
                t.data_location = None;
            }
        }
    }
    out
}
