//! Image data sets: files matched by a glob under the script's roots, or
//! the built-in labelled emoji set (openmoji). A data set is a list of file
//! names and labels; images are decoded (or rendered, for SVG) only when a
//! pass reaches them, and every file read is digested into the manifest.

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use assay_interpreter::{Arg, Handle, HandleKind, Image, Sandbox, ToolCtx, ToolError, Type, Value};
use sha2::{Digest, Sha256};

use crate::core::declare::{tool, ToolResult};
use crate::fetch::{self, Pinned};

const OPENMOJI: Pinned = Pinned {
    name: "openmoji",
    version: "17.0.0",
    file: "openmoji-17.0.0.tgz",
    sha256: "55ee7d13485dec86e9f38c1f3a645a13382d33ff97c0cd845ee824b0aef45e68",
};

#[derive(Debug, Clone)]
pub struct Item {
    pub path: PathBuf,
    pub name: String,
    pub label: Option<String>,
}

#[derive(Debug)]
pub struct Dataset {
    pub name: String,
    pub items: Arc<Vec<Item>>,
    /// The run's sandbox for a script's files, checked again at every read
    /// (a file replaced by a symlink after listing is refused then); None
    /// for Assay's own built-in sets in its cache.
    pub sandbox: Option<Sandbox>,
}

/// The largest image file a data set reads.
const MAX_IMAGE_BYTES: u64 = 256 << 20;

impl Dataset {
    /// Decodes (PNG, JPEG) or renders (SVG, 224 wide on white) item `i`,
    /// recording the file's digest in the run.
    pub fn load(&self, i: usize, ctx: &mut dyn ToolCtx) -> Result<Image, String> {
        let (img, path, digest) = self.read(i)?;
        ctx.note_input(&path, &digest);
        Ok(img)
    }

    /// Item `i` as an image, with its path and the file's sha256.
    pub fn read(&self, i: usize) -> Result<(Image, PathBuf, String), String> {
        self.read_on(i, Some([255, 255, 255, 255]))
    }

    /// As `read`, with drawings (SVG) rendered on `background` (None: transparent).
    pub fn read_on(&self, i: usize, background: Option<[u8; 4]>) -> Result<(Image, PathBuf, String), String> {
        let item = self.items.get(i).ok_or_else(|| format!("item {i} is out of range ({} items)", self.items.len()))?;
        let bytes = match &self.sandbox {
            Some(sb) => sb
                .read_limited(&item.path.to_string_lossy(), MAX_IMAGE_BYTES)
                .map(|(_, b)| b)
                .map_err(|e| format!("{}: {}", item.name, e.message()))?,
            None => read_builtin(&item.path, MAX_IMAGE_BYTES)?,
        };
        let digest = hex::encode(Sha256::digest(&bytes));
        let img = if item.path.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg")) {
            let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8", item.name))?;
            crate::vision::svg::render(&text, 224, Some(224), background)
        } else {
            crate::vision::decode(&bytes, &item.name)
        };
        img.map(|img| (img, item.path.clone(), digest))
    }
}

/// A file of Assay's own cache: a regular file, size checked before reading.
fn read_builtin(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, String> {
    crate::fetch::read_cached_at_most(path, limit)
}

impl Handle for Dataset {
    fn kind(&self) -> HandleKind {
        HandleKind::Dataset
    }
    fn describe(&self) -> String {
        format!("dataset {} ({} images)", self.name, self.items.len())
    }
    fn digest(&self) -> String {
        let mut h = Sha256::new();
        for it in self.items.iter() {
            h.update(it.name.as_bytes());
            h.update([0]);
            h.update(it.label.as_deref().unwrap_or("").as_bytes());
            h.update([0]);
            h.update(std::fs::metadata(&it.path).map(|m| m.len()).unwrap_or(0).to_le_bytes());
        }
        hex::encode(h.finalize())
    }
    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "size" => Value::Num(self.items.len() as f64),
            "names" => Value::list(self.items.iter().map(|i| Value::str(&i.name)).collect()),
            "labels" => {
                Value::list(self.items.iter().map(|i| i.label.as_deref().map(Value::str).unwrap_or_default()).collect())
            }
            _ => return None,
        })
    }
    fn field_names(&self) -> Vec<&'static str> {
        vec!["size", "names", "labels"]
    }
    fn count(&self) -> Option<usize> {
        Some(self.items.len())
    }
    fn entry(&self, i: usize) -> Option<Value> {
        let it = self.items.get(i)?;
        Some(Value::record([
            ("index", Value::Num(i as f64)),
            ("name", Value::str(&it.name)),
            ("label", it.label.as_deref().map(Value::str).unwrap_or_default()),
        ]))
    }
    fn select(&self, indices: &[usize]) -> Option<Value> {
        let items: Vec<Item> = indices.iter().filter_map(|i| self.items.get(*i).cloned()).collect();
        Some(Value::Handle(Arc::new(Dataset {
            name: self.name.clone(),
            items: Arc::new(items),
            sandbox: self.sandbox.clone(),
        })))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub fn dataset_of(x: &Arg) -> Result<&Dataset, ToolError> {
    x.handle::<Dataset>("a dataset (from images() or emoji())")
}

tool! {
    /// A data set of the PNG, JPEG, WebP and SVG files matching a glob (relative to the script's
    /// folder, inside its allowed roots), in sorted order. Labels are the files' folder names, or come
    /// from a `labels` side file: JSON {"file name": "label"} or CSV lines `file name,label` (names
    /// relative to the side file's folder, or bare file names). Images are read only when a pass
    /// reaches them.
    ///
    /// ```assay
    /// let d = images("fixtures/*.png")
    /// assert d.size == 1 and d.labels == ["fixtures"]
    /// assert item(d, 0).image.width == 4
    /// assert images("fixtures/*.png", labels: "fixtures/labels.csv").labels == ["a red square"]
    /// assert filter(d, x => x.label == "fixtures").size == 1 and filter(d, x => x.index > 0).size == 0
    /// ```
    images in Images -> Type::Handle(HandleKind::Dataset);
    {
        /// e.g. "photos/**/*.jpg"
        pattern: String,
        /// a .json or .csv file mapping file names to labels
        labels: Option<String> = None,
    }
    images
}

fn images(p: images::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let pattern = p.pattern.clone();
    // The sandbox walks only inside the roots, refuses `..` in any spelling,
    // never enters a symlinked folder and bounds the walk.
    let found = ctx.glob(&pattern).map_err(|e| e.at(p.pattern.name()))?;
    let mut items = Vec::new();
    for (rel, real) in found {
        let ext = real.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).unwrap_or_default();
        if !["png", "jpg", "jpeg", "webp", "svg"].contains(&ext.as_str()) {
            continue;
        }
        let label =
            std::path::Path::new(&rel).parent().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned());
        items.push(Item { path: real, name: rel, label });
    }
    items.sort_by(|x, y| x.name.cmp(&y.name));
    if items.is_empty() {
        return Err(p.pattern.error(format!("no PNG, JPEG, WebP or SVG file matches `{pattern}`")));
    }
    if let Some(file) = p.labels.as_deref() {
        let text = ctx.read_file(file).map_err(|e| e.at(p.labels.name()))?;
        let text = String::from_utf8(text).map_err(|_| p.labels.error(format!("{file} is not UTF-8 text")))?;
        let map = parse_labels(file, &text).map_err(|e| p.labels.error(e))?;
        let dir = std::path::Path::new(file).parent().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
        for it in &mut items {
            let rel = it.name.strip_prefix(&format!("{dir}/")).unwrap_or(&it.name);
            let bare = std::path::Path::new(&it.name).file_name().map(|n| n.to_string_lossy().into_owned());
            it.label = map.get(rel).or_else(|| bare.as_ref().and_then(|b| map.get(b))).cloned();
        }
    }
    Ok(Value::Handle(Arc::new(Dataset { name: pattern, items: Arc::new(items), sandbox: Some(ctx.sandbox()) })))
}

/// A labels side file: JSON {name: label} or CSV lines `name,label` (an
/// optional header `file,label`; a label may contain commas).
fn parse_labels(file: &str, text: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    if file.ends_with(".json") {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        let obj = v.as_object().ok_or_else(|| format!("{file}: expected an object {{\"file name\": \"label\"}}"))?;
        return obj
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(s) => Ok((k.clone(), s.to_string())),
                None => Err(format!("{file}: the label of `{k}` is not a string")),
            })
            .collect();
    }
    let mut out = std::collections::BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (n == 0 && line.eq_ignore_ascii_case("file,label")) {
            continue;
        }
        let (name, label) =
            line.split_once(',').ok_or_else(|| format!("{file}:{}: expected `file name,label`", n + 1))?;
        out.insert(name.trim().to_string(), label.trim().trim_matches('"').to_string());
    }
    Ok(out)
}

/// The openmoji colour SVGs and their annotations, fetched once.
pub fn emoji_items() -> Result<Vec<Item>, String> {
    let dir = crate::fetch::cache_dir().join("data").join("openmoji-17.0.0");
    let index = dir.join("openmoji.json");
    if !index.is_file() {
        let tgz = fetch::npm(&OPENMOJI)?;
        let tmp = dir.with_file_name(crate::fetch::unique("openmoji-unpack"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        let st = std::process::Command::new("tar")
            .arg("-xzf")
            .arg(&tgz)
            .arg("-C")
            .arg(&tmp)
            .args(["package/color/svg", "package/data/openmoji.json"])
            .status()
            .map_err(|e| format!("tar is not available: {e}"))?;
        if !st.success() {
            return Err("could not unpack openmoji".into());
        }
        // The folder appears whole, by one rename, or not at all: another
        // process unpacking at the same time (tests, shards, benchmark
        // items) either finds it complete or wins the rename first, and a
        // folder in use is never removed under its readers.
        let whole = tmp.join("whole");
        std::fs::create_dir_all(&whole).map_err(|e| e.to_string())?;
        std::fs::rename(tmp.join("package/color/svg"), whole.join("svg")).map_err(|e| e.to_string())?;
        std::fs::rename(tmp.join("package/data/openmoji.json"), whole.join("openmoji.json"))
            .map_err(|e| e.to_string())?;
        if dir.exists() && !index.is_file() {
            // Left half-made by an older Assay: moved aside, then removed.
            let aside = dir.with_file_name(crate::fetch::unique("openmoji-old"));
            if std::fs::rename(&dir, &aside).is_ok() {
                let _ = std::fs::remove_dir_all(&aside);
            }
        }
        let placed = std::fs::rename(&whole, &dir);
        let _ = std::fs::remove_dir_all(&tmp);
        if placed.is_err() && !index.is_file() {
            return Err(format!("could not place openmoji at {}", dir.display()));
        }
    }
    let text =
        String::from_utf8(crate::fetch::read_cached(&index)?).map_err(|e| format!("{}: {e}", index.display()))?;
    let list: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| format!("openmoji.json: {e}"))?;
    let mut items = Vec::new();
    for e in list {
        let hex = e["hexcode"].as_str().unwrap_or("").to_string();
        let path = dir.join("svg").join(format!("{hex}.svg"));
        if path.is_file() {
            let label = e["annotation"].as_str().map(|s| s.to_string());
            items.push(Item { path, name: hex, label });
        }
    }
    items.sort_by(|x, y| x.name.cmp(&y.name));
    Ok(items)
}

tool! {
    /// The openmoji set (CC BY-SA 4.0): about 4,300 colour emoji drawings, each labelled with its
    /// annotation ("red apple", "dog face", ...), rendered 224x224 on white when read. A labelled data
    /// set of pictures of things.
    ///
    /// ```assay
    /// let e = emoji()
    /// assert e.size > 4000
    /// let apple = index_of(e.labels, "red apple")
    /// assert item(e, apple).image.width == 224
    /// ```
    emoji in Images -> Type::Handle(HandleKind::Dataset);
    {
    }
    emoji
}

fn emoji(_p: emoji::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let items = emoji_items().map_err(ToolError::new)?;
    Ok(Value::Handle(Arc::new(Dataset { name: "openmoji".into(), items: Arc::new(items), sandbox: None })))
}

tool! {
    /// Item `i` of a data set: {name, label, image}. Drawings (SVG) are rendered on `background`;
    /// "none" keeps them transparent, for pasting into scenes.
    ///
    /// ```assay
    /// let d = images("fixtures/*.png")
    /// assert item(d, 0).name == "fixtures/red.png"
    /// ```
    item in Images -> Type::record_of(&[("name", Type::Str), ("label", Type::Any), ("image", Type::Image)]);
    {
        /// a data set
        data: Arg [Type::Handle(HandleKind::Dataset)],
        /// index
        i: usize,
        /// an SVG colour, or "none"
        background: String = "white",
    }
    item
}

fn item(p: item::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let d = dataset_of(&p.data)?;
    let i = *p.i;
    let bg = crate::vision::svg::parse_color(p.background.as_str()).map_err(|e| p.background.error(e))?;
    let (img, path, digest) = d.read_on(i, bg).map_err(|e| p.i.error(e))?;
    ctx.note_input(&path, &digest);
    let it = &d.items[i];
    Ok(Value::record([
        ("name", Value::str(&it.name)),
        ("label", it.label.as_deref().map(Value::str).unwrap_or_default()),
        ("image", Value::Image(Arc::new(img))),
    ]))
}

#[cfg(test)]
mod unpack_tests {
    /// Four unpackings of openmoji at once into an empty cache (as parallel
    /// tests, shards or benchmark items do): each sees the whole set, and
    /// none removes the folder another is reading (before, each removed
    /// and remade it, and a reader found drawings missing).
    #[test]
    #[allow(clippy::disallowed_methods, reason = "the test arranges its own cache folder")]
    fn concurrent_unpacks_each_see_the_whole_set() {
        let tgz = crate::fetch::npm(&super::OPENMOJI).expect("the openmoji package (fetched once into the cache)");
        let cache = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(cache.path().join("packages")).unwrap();
        std::fs::copy(&tgz, cache.path().join("packages").join(tgz.file_name().unwrap())).unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "vision::data::unpack_tests::unpack_into_the_given_cache", "--nocapture"])
            .env("ASSAY_CACHE_DIR", cache.path())
            .env("ASSAY_TEST_UNPACK", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("4 unpackers saw"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run by the test above in a process of its own (its cache folder set).
    #[test]
    fn unpack_into_the_given_cache() {
        if std::env::var_os("ASSAY_TEST_UNPACK").is_none() {
            return;
        }
        let counts: Vec<usize> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4).map(|_| s.spawn(|| super::emoji_items().map(|v| v.len()).unwrap_or(0))).collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0)).collect()
        });
        assert!(counts.iter().all(|n| *n > 4000 && *n == counts[0]), "{counts:?}");
        println!("4 unpackers saw {} drawings each", counts[0]);
    }
}
