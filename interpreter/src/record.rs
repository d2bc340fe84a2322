//! Run records on disk: `runs/<stem>/<id>/` with script.assay, results.json
//! (canonical), trace.jsonl, manifest.json, report.html and artifacts/.
//! A run is built in a hidden temporary folder and renamed into place as the
//! last step, so a run cut off midway never looks like a finished one.

#![allow(
    clippy::disallowed_methods,
    reason = "run folders read back by verify, diff and merge, never a script's files"
)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};

use crate::diag::SourceFile;
use crate::eval::{Outcome, Status};
use crate::sandbox::safe_artifact_name;
use crate::value::{format_f32, Value};
use crate::ASSAY_VERSION;

/// Tensors with more elements than this go to artifacts/ as .npy.
pub(crate) const INLINE_TENSOR_MAX: usize = 256;

fn slug(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let out = out.trim_matches('-').to_string();
    let out: String = out.chars().take(48).collect();
    if out.is_empty() {
        "value".into()
    } else {
        out
    }
}

/// A number as canonical JSON: integers without a fraction, NaN and
/// infinities as strings (JSON has no literal for them).
pub fn num_json(n: f64) -> Json {
    if n.is_nan() {
        json!("nan")
    } else if n.is_infinite() {
        json!(if n > 0.0 { "inf" } else { "-inf" })
    } else if n == n.trunc() && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

fn f32_json(x: f32) -> Json {
    if !x.is_finite() {
        return num_json(x as f64);
    }
    // Through the shortest f32 text, so 0.1f32 is written 0.1.
    num_json(format_f32(x).parse::<f64>().unwrap_or(x as f64))
}

/// Minimal .npy (version 1.0, little-endian f32, C order).
pub fn npy_f32(shape: &[usize], data: impl Iterator<Item = f32>) -> Vec<u8> {
    let mut out = npy_f32_header(shape);
    for x in data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// The header of an .npy file of little-endian f32 in C order; the data
/// follows it (a writer can stream it).
pub fn npy_f32_header(shape: &[usize]) -> Vec<u8> {
    let shape_txt = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::new();
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// Converts a value to canonical JSON; large tensors and images become
/// artifact files referenced by name and digest.
pub(crate) struct JsonWriter<'o> {
    pub artifacts: &'o mut Vec<(String, Vec<u8>)>,
}

impl JsonWriter<'_> {
    fn artifact(&mut self, base: &str, ext: &str, bytes: Vec<u8>) -> String {
        let mut name = format!("{base}.{ext}");
        let mut i = 2;
        while self.artifacts.iter().any(|(n, _)| *n == name) {
            name = format!("{base}-{i}.{ext}");
            i += 1;
        }
        self.artifacts.push((name.clone(), bytes));
        format!("artifacts/{name}")
    }

    pub(crate) fn value(&mut self, v: &Value, hint: &str) -> Json {
        match v {
            Value::None => Json::Null,
            Value::Bool(b) => json!(b),
            Value::Num(n) => num_json(*n),
            Value::Str(s) => json!(s.as_ref()),
            Value::List(items) => {
                Json::Array(items.iter().enumerate().map(|(i, x)| self.value(x, &format!("{hint}-{i}"))).collect())
            }
            Value::Record(fields) => {
                let mut m = Map::new();
                for (k, x) in fields.iter() {
                    m.insert(k.clone(), self.value(x, &format!("{hint}-{}", slug(k))));
                }
                Json::Object(m)
            }
            Value::Range(a, b) => json!({"range": [a, b]}),
            Value::Tensor(t) => {
                let shape: Vec<usize> = t.shape().to_vec();
                if t.len() <= INLINE_TENSOR_MAX {
                    json!({
                        "dtype": "f32",
                        "shape": shape,
                        "values": t.iter().map(|x| f32_json(*x)).collect::<Vec<_>>(),
                    })
                } else {
                    let bytes = npy_f32(&shape, t.iter().copied());
                    let digest = hex::encode(Sha256::digest(&bytes));
                    let path = self.artifact(&slug(hint), "npy", bytes);
                    let n = t.len() as f64;
                    let mean = t.iter().map(|x| *x as f64).sum::<f64>() / n;
                    let min = t.iter().fold(f32::INFINITY, |a, b| a.min(*b));
                    let max = t.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b));
                    json!({
                        "dtype": "f32",
                        "shape": shape,
                        "file": path,
                        "sha256": digest,
                        "min": f32_json(min),
                        "max": f32_json(max),
                        "mean": num_json(mean),
                    })
                }
            }
            Value::Image(img) => match img.to_png() {
                Ok(png) => {
                    let digest = hex::encode(Sha256::digest(&png));
                    let path = self.artifact(&slug(hint), "png", png);
                    json!({"image": {"width": img.width, "height": img.height, "file": path, "sha256": digest}})
                }
                Err(e) => json!({"image": {"width": img.width, "height": img.height, "error": e}}),
            },
            Value::Func(_) | Value::Module(_) => json!(v.to_repr()),
            Value::Handle(h) => {
                json!({"handle": h.kind().name(), "describe": h.describe(), "digest": h.digest()})
            }
        }
    }
}

/// Serializes with sorted keys, two-space indent and a final newline.
pub fn canonical(j: &Json) -> String {
    let mut s = serde_json::to_string_pretty(j).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

/// results.json: every record and assert, and the error if the run failed.
pub fn results_json(out: &Outcome, file: &SourceFile, artifacts: &mut Vec<(String, Vec<u8>)>) -> String {
    let mut w = JsonWriter { artifacts };
    let mut records = Map::new();
    for (k, v) in &out.records {
        records.insert(k.clone(), w.value(v, &format!("record-{}", slug(k))));
    }
    let asserts: Vec<Json> = out
        .asserts
        .iter()
        .map(|a| json!({"expr": a.expr, "line": a.line, "message": a.message, "passed": a.passed}))
        .collect();
    let error = out.error.as_ref().map(|d| {
        let line =
            d.span.filter(|_| d.file.as_ref().is_some_and(|f| f.name == file.name)).map(|s| file.line_col(s.start).0);
        json!({"code": d.code, "message": d.message, "line": line})
    });
    canonical(&json!({
        "asserts": asserts,
        "error": error,
        "records": records,
        "status": Status::of(out).as_str(),
    }))
}

use crate::trace::TRACE_GZ_ABOVE;

/// A trace's file: `trace.jsonl`, or `trace.jsonl.gz` when it is large.
pub fn trace_file(jsonl: &str) -> (&'static str, Vec<u8>) {
    if jsonl.len() <= TRACE_GZ_ABOVE {
        return ("trace.jsonl", jsonl.as_bytes().to_vec());
    }
    // No file name or time in the header: the same trace, the same bytes.
    let mut gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::default());
    match gz.write_all(jsonl.as_bytes()).and_then(|_| gz.finish()) {
        Ok(bytes) => ("trace.jsonl.gz", bytes),
        Err(_) => ("trace.jsonl", jsonl.as_bytes().to_vec()),
    }
}

/// A run folder's trace as JSONL, from whichever file it has (at most
/// `limit` bytes, compressed or not).
pub fn read_trace(dir: &Path, limit: u64) -> Result<String, String> {
    let gz = dir.join("trace.jsonl.gz");
    let bytes = if gz.is_file() {
        gunzip(&read_regular(&gz, limit)?, limit).map_err(|e| format!("{}: {e}", gz.display()))?
    } else {
        read_regular(&dir.join("trace.jsonl"), limit)?
    };
    String::from_utf8(bytes).map_err(|e| format!("the trace is not UTF-8: {e}"))
}

/// Streams a run folder's trace as JSONL into `w` (decompressing a
/// `trace.jsonl.gz` as it goes): memory does not grow with the trace.
pub fn copy_trace(dir: &Path, w: &mut dyn std::io::Write) -> Result<u64, String> {
    let gz = dir.join("trace.jsonl.gz");
    let (path, compressed) = if gz.is_file() { (gz, true) } else { (dir.join("trace.jsonl"), false) };
    let file = open_regular(&path, u64::MAX)?;
    let copied = if compressed {
        std::io::copy(&mut flate2::read::GzDecoder::new(file), w)
    } else {
        std::io::copy(&mut { file }, w)
    };
    copied.map_err(|e| format!("{}: {e}", path.display()))
}

/// Decompresses gzip `bytes`, refusing more than `limit` bytes of output.
pub fn gunzip(bytes: &[u8], limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).take(limit + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(std::io::Error::other(format!("more than {limit} bytes once decompressed")));
    }
    Ok(out)
}

/// A run's trace as one JSONL string (small traces; records stream it).
pub fn trace_jsonl(out: &Outcome) -> String {
    out.trace.to_jsonl()
}

/// A run's manifest.json: where the run came from, what it read and how it
/// ended. The one definition of its fields: runs write it with
/// [`Manifest::to_json`] and merge, verify and replay read it back with
/// [`Manifest::parse`] (unknown fields survive a round trip in `other`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub assay_version: String,
    /// How the run ended (`partial` for a shard's record).
    pub status: Status,
    pub seed: u64,
    pub script: ScriptId,
    pub allowed_roots: Vec<String>,
    /// Every file the run read (path to sha256).
    pub inputs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<usize>,
    /// The sandbox's budgets and what it enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Json>,
    /// The ONNX Runtime the run loaded, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnxruntime: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_cache: Option<CallCacheFacts>,
    /// For `assay merge`: how many shards, and what their records answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<Json>,
    /// Set on a record copied from an earlier identical run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed: Option<Replayed>,
    /// A shard's partial record: which shard it is...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardId>,
    /// ...the shardable calls it made...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharded_calls: Option<Vec<ShardedCall>>,
    /// ...the sha256 of its partials.bin...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partials_sha256: Option<String>,
    /// ...and where it stopped, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Fields this version does not know (a newer Assay's), kept as read.
    #[serde(flatten)]
    pub other: BTreeMap<String, Json>,
}

/// The script a run ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScriptId {
    pub name: String,
    pub sha256: String,
    /// The folder it was read from.
    pub dir: String,
}

/// What the call cache did for a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallCacheFacts {
    /// `on`, `off`, or bypassed (every call ran, answers stored).
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<usize>,
}

/// Why a record is a copy of an earlier run's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Replayed {
    pub key: String,
    pub why: String,
}

/// Which shard of how many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardId {
    pub index: usize,
    pub count: usize,
}

/// A shardable call a shard made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardedCall {
    pub tool: String,
    pub line: usize,
}

impl Manifest {
    /// The manifest of a run that ended with `out`, of `script_text` read
    /// from `script_dir`; the caller adds what it knows (sandbox, runtime,
    /// cache).
    pub fn of(out: &Outcome, script_name: &str, script_text: &str, script_dir: &Path, roots: &[PathBuf]) -> Self {
        Manifest {
            assay_version: ASSAY_VERSION.to_string(),
            status: Status::of(out),
            seed: out.seed,
            script: ScriptId {
                name: script_name.to_string(),
                sha256: hex::encode(Sha256::digest(script_text.as_bytes())),
                dir: script_dir.display().to_string(),
            },
            allowed_roots: roots.iter().map(|p| p.display().to_string()).collect(),
            inputs: out.inputs.iter().map(|(p, d)| (p.display().to_string(), d.clone())).collect(),
            tool_calls: Some(out.trace.len()),
            ..Manifest::default()
        }
    }
}

impl ManifestFile for Manifest {}

/// A record folder's manifest.json (a run's [`Manifest`], an agent's
/// investigation): one typed struct per kind of folder, written and read by
/// the same code, so what one writes the other reads back field by field.
pub trait ManifestFile: Serialize + serde::de::DeserializeOwned {
    /// The manifest as written: canonical JSON (keys sorted, pretty, a
    /// final newline), so that equal manifests are equal bytes.
    fn to_json(&self) -> String {
        canonical(&serde_json::to_value(self).unwrap_or(Json::Null))
    }

    /// A manifest as read back (from a run folder, a shard, a kept replay).
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("manifest.json: {e}"))
    }

    /// The manifest.json of the folder `dir`, read as a regular file of at
    /// most `max` bytes.
    fn read_from(dir: &Path, max: u64) -> Result<Self, String> {
        let bytes = read_regular(&dir.join("manifest.json"), max)
            .map_err(|e| format!("{}: {e}", dir.join("manifest.json").display()))?;
        Self::parse(&bytes)
    }
}

/// All the files of one run, ready to be written.
pub struct RunFiles {
    pub script: String,
    pub results: String,
    pub trace: crate::trace::Trace,
    pub manifest: String,
    pub report: String,
    pub artifacts: Vec<(String, Vec<u8>)>,
}

impl RunFiles {
    /// The record of a run that ended with `out`: its script, results.json
    /// (values too large to inline become artifacts, with those the run
    /// wrote), the trace, the manifest and the report. `write_files` writes
    /// it; every run, error records included, is assembled here.
    pub fn of(file: &SourceFile, out: &mut Outcome, manifest: &Manifest) -> RunFiles {
        let mut artifacts = std::mem::take(&mut out.artifacts);
        let results = results_json(out, file, &mut artifacts);
        let report = crate::report::report_html(&file.name, out);
        RunFiles {
            script: file.text.clone(),
            results,
            trace: out.trace.detach(),
            manifest: manifest.to_json(),
            report,
            artifacts,
        }
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The folder name a script's runs go under: its file stem reduced to
/// letters, digits, `-`, `_` and inner dots, so that no script name (`..`,
/// `...assay`, a name with `/` or control characters) can put its record
/// anywhere but `runs/<stem>/`.
pub fn run_stem(stem: &str) -> String {
    let mut out: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .take(64)
        .collect();
    out = out.trim_start_matches('.').to_string();
    if out.is_empty() || out.chars().all(|c| c == '.' || c == '-') {
        out = format!("script{out}");
    }
    out
}

/// Starts a run: makes `runs_dir/stem/.incomplete-PID-NONCE/artifacts`,
/// owned by this process (see `crate::owner`) while the returned lease is
/// held. Unfinished folders whose owner is certainly gone are removed
/// first; returns the new folder, how many were removed, and the lease
/// (drop it after the folder is renamed into place or removed).
pub fn begin_run(runs_dir: &Path, stem: &str) -> std::io::Result<(PathBuf, usize, crate::owner::Lease)> {
    let parent = runs_dir.join(run_stem(stem));
    fs::create_dir_all(&parent)?;
    let cleaned = crate::owner::clean_unfinished(&parent);
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let tmp = parent.join(format!(".incomplete-{}-{nonce}", std::process::id()));
    let lease = crate::owner::claim(&tmp)?;
    fs::create_dir_all(tmp.join("artifacts"))?;
    Ok((tmp, cleaned, lease))
}

/// Writes a run's files into a folder made by `begin_run`; the manifest
/// last, because a folder without one is not a run.
pub fn write_files(dir: &Path, files: &RunFiles) -> std::io::Result<()> {
    fs::create_dir_all(dir.join("artifacts"))?;
    write_file(&dir.join("script.assay"), files.script.as_bytes())?;
    write_file(&dir.join("results.json"), files.results.as_bytes())?;
    files.trace.write_file(dir)?;
    write_file(&dir.join("report.html"), files.report.as_bytes())?;
    for (name, bytes) in &files.artifacts {
        let safe =
            safe_artifact_name(name).ok_or_else(|| std::io::Error::other(format!("bad artifact name {name}")))?;
        write_file(&dir.join("artifacts").join(safe), bytes)?;
    }
    write_file(&dir.join("manifest.json"), files.manifest.as_bytes())
}

/// Writes a shard's record into a folder made by `begin_run`: the script,
/// its partial results, its trace; the manifest last. No results.json: a
/// shard is never a finished run.
pub fn write_shard_files(
    dir: &Path,
    script: &str,
    partials: &[u8],
    trace: &crate::trace::Trace,
    manifest: &str,
) -> std::io::Result<()> {
    write_file(&dir.join("script.assay"), script.as_bytes())?;
    write_file(&dir.join("partials.bin"), partials)?;
    trace.write_file(dir)?;
    write_file(&dir.join("manifest.json"), manifest.as_bytes())
}

/// Renames a finished folder to the next free `NNNN` beside it.
pub fn finish_run(tmp: &Path) -> std::io::Result<PathBuf> {
    let parent = tmp.parent().ok_or_else(|| std::io::Error::other("a run folder has no parent"))?;
    if !tmp.join("manifest.json").is_file() {
        return Err(std::io::Error::other("the run has no manifest: it did not finish"));
    }
    // Pick the next number; retry if another run takes it first.
    for _ in 0..1000 {
        let next = next_id(parent)?;
        let dest = parent.join(format!("{next:04}"));
        match fs::rename(tmp, &dest) {
            Ok(()) => return Ok(dest),
            Err(_) if dest.exists() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("could not find a free run number"))
}

/// Renames a finished folder to `name` beside it, replacing a folder of that
/// name (a shard run again): the old one is moved aside under a name the
/// next run's clean-up removes, so a reader sees the old folder or the new
/// one, never a mix.
pub fn finish_named(tmp: &Path, name: &str) -> std::io::Result<PathBuf> {
    let parent = tmp.parent().ok_or_else(|| std::io::Error::other("a run folder has no parent"))?;
    if !tmp.join("manifest.json").is_file() {
        return Err(std::io::Error::other("the run has no manifest: it did not finish"));
    }
    let dest = parent.join(name);
    if dest.exists() {
        let nonce =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let aside = parent.join(format!(".incomplete-{}-replaced-{nonce}", std::process::id()));
        fs::rename(&dest, &aside)?;
        let renamed = fs::rename(tmp, &dest);
        let _ = fs::remove_dir_all(&aside);
        renamed?;
    } else {
        fs::rename(tmp, &dest)?;
    }
    Ok(dest)
}

/// Writes `runs_dir/stem/NNNN/` atomically and returns its path.
pub fn write_run(runs_dir: &Path, stem: &str, files: &RunFiles) -> std::io::Result<PathBuf> {
    let (tmp, _, _lease) = begin_run(runs_dir, stem)?;
    if let Err(e) = write_files(&tmp, files) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    finish_run(&tmp)
}

/// The largest run id; ids never wrap (a folder named 4294967295 is
/// followed by 4294967296).
const MAX_RUN_ID: u64 = 999_999_999_999;

fn next_id(parent: &Path) -> std::io::Result<u64> {
    let mut max = 0u64;
    for e in fs::read_dir(parent)? {
        let e = e?;
        let name = e.file_name();
        let Some(s) = name.to_str() else { continue };
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        match s.parse::<u64>() {
            Ok(n) if n <= MAX_RUN_ID => max = max.max(n),
            _ => return Err(std::io::Error::other(format!("a run folder is numbered beyond {MAX_RUN_ID}: {s}"))),
        }
    }
    if max >= MAX_RUN_ID {
        return Err(std::io::Error::other(format!("run ids are used up to {MAX_RUN_ID}; move old runs away")));
    }
    Ok(max + 1)
}

/// Reads a file of a run folder: a regular file (never a pipe or device,
/// which could hang), at most `limit` bytes, checked before reading.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    read_bounded(path, limit, false)
}

/// As `read_regular`, through a link at the end of the path too (a
/// script given on the command line may be one).
pub fn read_regular_following(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    read_bounded(path, limit, true)
}

/// A reader of a regular file that is not a link, opened the way
/// `read_regular` opens it (never blocking, size checked first), for a
/// caller that reads a file in parts (a kept record's header, then body).
pub fn open_regular(path: &Path, limit: u64) -> Result<std::io::Take<fs::File>, String> {
    open_bounded(path, limit, false)
}

/// The one read door's opening: a file opened without blocking (a FIFO is
/// refused, not waited on), checked to be a regular file of at most
/// `limit` bytes, and a reader that stops one byte past the limit.
fn open_bounded(path: &Path, limit: u64, follow: bool) -> Result<std::io::Take<fs::File>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | nofollow)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = f.metadata().map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.len() > limit {
        return Err(format!("{} is {} bytes, more than the {limit} allowed", path.display(), meta.len()));
    }
    Ok(f.take(limit.saturating_add(1)))
}

fn read_bounded(path: &Path, limit: u64, follow: bool) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open_bounded(path, limit, follow)?.read_to_end(&mut bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{} grew past {limit} bytes while read", path.display()));
    }
    Ok(bytes)
}

/// The sha256 of a regular file, through its links (a replay must see
/// what a run naming the path would read), read the way `read_regular`
/// reads, streamed.
pub fn digest_regular(path: &Path, limit: u64) -> Result<String, String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut r = open_bounded(path, limit, true)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    loop {
        let n = r.read(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        read += n as u64;
        h.update(&buf[..n]);
    }
    if read > limit {
        return Err(format!("{} grew past {limit} bytes while read", path.display()));
    }
    Ok(hex::encode(h.finalize()))
}

fn read_text(path: &Path, limit: u64) -> Result<String, String> {
    String::from_utf8(read_regular(path, limit)?).map_err(|_| format!("{} is not UTF-8 text", path.display()))
}

/// Size limits for reading a run folder back.
const MAX_RESULTS_BYTES: u64 = 1 << 30;
const MAX_SMALL_BYTES: u64 = 64 << 20;

/// A finished run folder, as read back for diff and verify.
pub struct RunDir {
    pub path: PathBuf,
    pub results: Json,
    pub results_text: String,
    pub manifest: Manifest,
    pub script: String,
}

/// Reads a run folder, refusing one that did not finish.
pub fn read_run(path: &Path) -> Result<RunDir, String> {
    if !path.is_dir() {
        return Err(format!("{} is not a run folder", path.display()));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with(".incomplete") || !path.join("manifest.json").exists() {
        return Err(format!("{} is an incomplete run (it was cut off before it finished)", path.display()));
    }
    let manifest_text = read_text(&path.join("manifest.json"), MAX_SMALL_BYTES)?;
    let results_text = read_text(&path.join("results.json"), MAX_RESULTS_BYTES)?;
    let results: Json =
        serde_json::from_str(&results_text).map_err(|e| format!("{}: results.json: {e}", path.display()))?;
    let manifest = Manifest::parse(manifest_text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    let script = read_text(&path.join("script.assay"), MAX_SMALL_BYTES)?;
    Ok(RunDir { path: path.to_path_buf(), results, results_text, manifest, script })
}

#[cfg(test)]
mod trace_tests {
    use super::*;

    #[test]
    fn a_large_trace_is_gzipped_deterministically_and_reads_back() {
        let small = "{\"step\":1,\"tool\":\"abs\",\"seconds\":0.1}\n";
        assert_eq!(trace_file(small), ("trace.jsonl", small.as_bytes().to_vec()));
        let big: String =
            (1..=40_000).map(|i| format!("{{\"step\":{i},\"tool\":\"abs\",\"seconds\":0.000002}}\n")).collect();
        assert!(big.len() > TRACE_GZ_ABOVE);
        let (name, bytes) = trace_file(&big);
        assert_eq!(name, "trace.jsonl.gz");
        assert_eq!(trace_file(&big).1, bytes, "the same trace, the same bytes");
        assert!(bytes.len() * 10 < big.len());
        assert_eq!(gunzip(&bytes, big.len() as u64).expect("gunzip"), big.as_bytes());
        // More output than the limit is refused, not read.
        assert!(gunzip(&bytes, 1000).is_err());
        let dir = tempfile::tempdir().expect("dir");
        fs::write(dir.path().join(name), &bytes).expect("write");
        assert_eq!(read_trace(dir.path(), 1 << 30).expect("read"), big);
        let mut out = Vec::new();
        assert_eq!(copy_trace(dir.path(), &mut out).expect("copy"), big.len() as u64);
        assert_eq!(out, big.as_bytes());
    }
}
