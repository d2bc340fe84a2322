//! Whole-run replay: an unchanged rerun answered from the call cache's
//! store without starting a script.
//!
//! A run is a function of its job (script text and name, folder, allowed
//! roots, seed, budgets, cache mode), the Assay executable, the `ASSAY_*`
//! environment (and `ORT_DYLIB_PATH`) and the files it read: nothing else reaches a script (the
//! sandbox sees to that), except what the child reports as coming from
//! outside (a volatile tool such as an LLM call, or a folder listing, whose
//! answer no file digest covers). So when a run finished with results (`ok`
//! or `assert-failed`) and took nothing from outside, the parent stores its
//! record under the job's key, with the digests of every file it read; a
//! later run of the same job whose files all still have those digests gets
//! a copy of that record in a new run folder instead of running. The copy
//! says so: the manifest gains `replayed` and its `call_cache` says every
//! call was answered, and each trace step is marked `cached` with no time.
//!
//! Entries live in the call cache's store (same size bound, same
//! least-recently-used pruning, same `--no-cache` switch) as one file each:
//! a header of JSON (format, job key, inputs, the run's report, each file's
//! name, length and sha256) and the small files' bytes; files of 256 KiB
//! and more (a report with its images, large artifacts) are read-only blobs
//! named by their sha256 beside the entries, which a replay hard-links into
//! the run folder (copies across file systems). Everything is checked
//! against its sha256 on every read: a damaged entry or blob, a changed
//! input or a record holding anything but plain files is a miss, never a
//! wrong record.

use assay_interpreter::ManifestFile;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use assay_interpreter::{CallCacheFacts, Manifest, Replayed};

use crate::supervise::{Done, Job};

// 3: inputs are also checked by the path as named (links followed now).
const MAGIC: &[u8] = b"assay run replay 3\n";
/// Larger records are not kept (large captures streamed to disk).
const MAX_RECORD_BYTES: u64 = 256 << 20;
const MAX_FILES: usize = 4096;

#[derive(Serialize, Deserialize)]
struct Header {
    key: String,
    inputs: BTreeMap<String, String>,
    /// The same reads by the path as the script named it (absolute, links
    /// not followed): a re-pointed link or folder link is a changed input.
    named_inputs: BTreeMap<String, String>,
    done: Done,
    /// The record's files in the order their bytes follow (those kept
    /// inline).
    files: Vec<KeptFile>,
}

#[derive(Serialize, Deserialize)]
struct KeptFile {
    /// Relative to the run folder.
    path: String,
    len: u64,
    sha256: String,
    /// Kept as a blob of its own (`blob_path`), not inline: large files,
    /// which a replay links into the run folder instead of writing.
    blob: bool,
}

/// Files from this size on are kept as blobs of their own.
const BLOB_MIN: u64 = 256 << 10;

/// The identity of this executable's file (a rebuilt Assay is another
/// Assay even at the same version number).
fn exe_stamp() -> String {
    use std::os::unix::fs::MetadataExt;
    crate::supervise::executable()
        .and_then(std::fs::metadata)
        .map(|m| format!("{} {}.{} {}.{} {}", m.len(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec(), m.ino()))
        .unwrap_or_default()
}

/// The job's key: everything a run depends on besides the files it reads.
/// `None` if the job cannot be written down.
pub(crate) fn key(job: &Job) -> Option<String> {
    let mut j = serde_json::to_value(job).ok()?;
    // Where the record goes and whether the terminal has colour change
    // nothing the run computes.
    j["out"] = Json::Null;
    j["color"] = Json::Null;
    let env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("ASSAY_") || k == "ORT_DYLIB_PATH" || k == "SLURM_CPUS_PER_TASK")
        .collect();
    let mut h = Sha256::new();
    h.update(MAGIC);
    h.update(assay_interpreter::ASSAY_VERSION.as_bytes());
    h.update([0]);
    h.update(exe_stamp().as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(&j).ok()?);
    h.update([0]);
    h.update(serde_json::to_vec(&env).ok()?);
    Some(hex::encode(h.finalize()))
}

fn entry_path(key: &str) -> PathBuf {
    let store = crate::cache::dir();
    store.join(&key[..2]).join(key)
}

/// A kept file by its content (`blob-SHA256` beside the entries, so the
/// store's bound and pruning cover it).
fn blob_path(sha: &str) -> PathBuf {
    let store = crate::cache::dir();
    store.join(&sha[..2]).join(format!("blob-{sha}"))
}

/// Writes a blob once (read-only: a replayed record links to it, and a
/// record is not to be edited in place).
fn put_blob(sha: &str, bytes: &[u8]) -> Option<()> {
    use std::os::unix::fs::PermissionsExt;
    let dest = blob_path(sha);
    if dest.is_file() && assay_stdlib::fetch::sha256_file(&dest).ok().as_deref() == Some(sha) {
        return Some(());
    }
    std::fs::create_dir_all(dest.parent()?).ok()?;
    let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o444)))
        .and_then(|()| std::fs::rename(&tmp, &dest));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return None;
    }
    Some(())
}

/// The files of a finished run folder, relative, sorted; `None` if it holds
/// anything but plain files and folders (a link), too many files or too many
/// bytes. Names starting with `.` (the cache's staging folder) are left out.
fn record_files(dir: &Path) -> Option<Vec<(String, PathBuf, u64)>> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, PathBuf, u64)>, total: &mut u64) -> Option<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.collect::<Result<_, _>>().ok()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().into_string().ok()?;
            if name.starts_with('.') {
                continue;
            }
            let rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let meta = std::fs::symlink_metadata(e.path()).ok()?;
            if meta.is_dir() {
                walk(&e.path(), &rel, out, total)?;
            } else if meta.is_file() {
                *total += meta.len();
                if *total > MAX_RECORD_BYTES || out.len() >= MAX_FILES {
                    return None;
                }
                out.push((rel, e.path(), meta.len()));
            } else {
                return None;
            }
        }
        Some(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out, &mut 0)?;
    Some(out)
}

/// Keeps a finished run's record for replay (best effort: a store that
/// cannot be written only means the next run runs). `run_dir` is the
/// finished run folder, `done` its report.
pub(crate) fn store(key: &str, run_dir: &Path, done: &Done) {
    if !done.replayable
        || !matches!(done.status, assay_interpreter::Status::Ok | assay_interpreter::Status::AssertFailed)
    {
        return;
    }
    let Ok(run) = assay_interpreter::read_run(run_dir) else { return };
    let inputs = run.manifest.inputs;
    let Some(files) = record_files(run_dir) else { return };
    let mut body = Vec::new();
    let mut listed = Vec::new();
    for (rel, path, _) in &files {
        let Ok(bytes) = assay_interpreter::read_regular(path, MAX_RECORD_BYTES) else { return };
        let sha = hex::encode(Sha256::digest(&bytes));
        let blob = bytes.len() as u64 >= BLOB_MIN
            && !matches!(rel.as_str(), "manifest.json" | "trace.jsonl" | "trace.jsonl.gz");
        if blob {
            if put_blob(&sha, &bytes).is_none() {
                return;
            }
        } else {
            body.extend_from_slice(&bytes);
        }
        listed.push(KeptFile { path: rel.clone(), len: bytes.len() as u64, sha256: sha, blob });
    }
    let named_inputs = done.named_inputs.clone();
    let header = Header { key: key.to_string(), inputs, named_inputs, done: done.clone(), files: listed };
    let Ok(header) = serde_json::to_vec(&header) else { return };
    let dest = entry_path(key);
    let Some(folder) = dest.parent() else { return };
    if std::fs::create_dir_all(folder).is_err() {
        return;
    }
    let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(MAGIC)?;
        f.write_all(&(header.len() as u64).to_le_bytes())?;
        f.write_all(&header)?;
        f.write_all(&body)?;
        f.sync_all()
    });
    if written.is_err() || std::fs::rename(&tmp, &dest).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// A kept record whose inputs are unchanged: its report and files.
pub(crate) struct Kept {
    done: Done,
    files: Vec<(String, Content)>,
}

/// A kept file's bytes, or the blob that holds them.
enum Content {
    Bytes(Vec<u8>),
    Blob(PathBuf),
}

fn read_entry(key: &str) -> Option<(Header, Vec<u8>)> {
    // A planted FIFO or device in the store is refused, never waited on.
    let limit = MAGIC.len() as u64 + 8 + 2 * MAX_RECORD_BYTES;
    let mut f = assay_interpreter::open_regular(&entry_path(key), limit).ok()?;
    let mut magic = vec![0u8; MAGIC.len()];
    f.read_exact(&mut magic).ok()?;
    if magic != MAGIC {
        return None;
    }
    let mut len = [0u8; 8];
    f.read_exact(&mut len).ok()?;
    let len = u64::from_le_bytes(len);
    if len > MAX_RECORD_BYTES {
        return None;
    }
    let mut header = vec![0u8; len as usize];
    f.read_exact(&mut header).ok()?;
    let header: Header = serde_json::from_slice(&header).ok()?;
    let mut body = Vec::new();
    f.take(MAX_RECORD_BYTES + 1).read_to_end(&mut body).ok()?;
    Some((header, body))
}

/// The record kept for `job` (whose key is `key`), if there is one, it is
/// intact and every file it read still has the digest it had. Only files
/// under the job's allowed roots or Assay's own cache are looked at (all a
/// run can read).
pub(crate) fn lookup(key: &str, job: &Job) -> Option<Kept> {
    let (header, body) = read_entry(key)?;
    if header.key != key {
        return None;
    }
    let mut readable: Vec<PathBuf> = job.roots.iter().filter_map(|r| r.canonicalize().ok()).collect();
    readable.extend(assay_stdlib::fetch::cache_dir().canonicalize().ok());
    // Each read as the run named it, through its links as they are now,
    // then each file it was: both must be unchanged. Read through the one
    // read door (no blocking open, regular files, bounded).
    let mut verified: std::collections::HashSet<(PathBuf, &str)> = std::collections::HashSet::new();
    for (path, sha) in header.named_inputs.iter().chain(&header.inputs) {
        // A file recorded by its resolved path that was checked already
        // as the target of a name.
        if verified.contains(&(PathBuf::from(path), sha.as_str())) {
            continue;
        }
        let real = Path::new(path).canonicalize().ok()?;
        if !readable.iter().any(|r| real.starts_with(r)) {
            return None;
        }
        // A name that is its own file (no link on the way) is hashed once.
        if verified.contains(&(real.clone(), sha.as_str())) {
            continue;
        }
        if crate::cache::input_digest_resolved(Path::new(path), &real).as_deref() != Some(sha.as_str()) {
            return None;
        }
        verified.insert((real, sha.as_str()));
    }
    let mut files = Vec::with_capacity(header.files.len());
    let mut at = 0usize;
    for f in header.files {
        if !safe_relative(&f.path) {
            return None;
        }
        if f.blob {
            let blob = blob_path(&f.sha256);
            let meta = std::fs::symlink_metadata(&blob).ok()?;
            if !meta.is_file() || meta.len() != f.len || assay_stdlib::fetch::sha256_file(&blob).ok()? != f.sha256 {
                return None;
            }
            files.push((f.path, Content::Blob(blob)));
            continue;
        }
        let end = at.checked_add(usize::try_from(f.len).ok()?)?;
        let bytes = body.get(at..end)?;
        if hex::encode(Sha256::digest(bytes)) != f.sha256 {
            return None;
        }
        files.push((f.path, Content::Bytes(bytes.to_vec())));
        at = end;
    }
    if at != body.len() {
        return None;
    }
    // Used: the least recently used entries are pruned first (touched
    // through the read door: never a FIFO or a link put in its place).
    if let Ok(f) = assay_interpreter::open_regular(&entry_path(key), u64::MAX) {
        let _ = f.get_ref().set_modified(std::time::SystemTime::now());
    }
    Some(Kept { done: header.done, files })
}

/// A path inside the run folder: plain names, no `..`, not absolute.
fn safe_relative(rel: &str) -> bool {
    !rel.is_empty()
        && rel.split('/').all(|part| !part.is_empty() && part != "." && part != ".." && !part.starts_with('.'))
        && !rel.contains('\\')
}

/// Writes a kept record into the unfinished run folder `tmp`, marked as a
/// replay, and returns its report (every call answered from the cache).
pub(crate) fn write(kept: Kept, tmp: &Path, key: &str) -> Result<Done, String> {
    let Kept { mut done, files } = kept;
    for (rel, content) in files {
        let dest = tmp.join(&rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        // The folder is unfinished (`.incomplete-*`) until the caller's
        // `finish_run` renames it, so the order of writes does not matter.
        match content {
            Content::Bytes(bytes) => {
                let bytes = match rel.as_str() {
                    "manifest.json" => replayed_manifest(&bytes, key, done.tool_calls)?,
                    "trace.jsonl" => replayed_trace(&bytes)?,
                    "trace.jsonl.gz" => {
                        let text = assay_interpreter::gunzip(&bytes, MAX_RECORD_BYTES)
                            .map_err(|e| format!("a kept trace: {e}"))?;
                        let jsonl = String::from_utf8(replayed_trace(&text)?).map_err(|e| e.to_string())?;
                        assay_interpreter::trace_file(&jsonl).1
                    }
                    _ => bytes,
                };
                std::fs::write(&dest, bytes).map_err(|e| format!("{}: {e}", dest.display()))?;
            }
            // A link where the store and the run folder share a file
            // system, a copy where they do not.
            Content::Blob(blob) => {
                if std::fs::hard_link(&blob, &dest).is_err() {
                    std::fs::copy(&blob, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
                }
            }
        }
    }
    done.cached_calls = done.tool_calls;
    done.replayed = true;
    Ok(done)
}

fn replayed_manifest(bytes: &[u8], key: &str, calls: usize) -> Result<Vec<u8>, String> {
    let mut m = Manifest::parse(bytes).map_err(|e| format!("a kept {e}"))?;
    m.call_cache = Some(CallCacheFacts { mode: "on".into(), answered: Some(calls), stored: Some(0) });
    m.replayed = Some(Replayed {
        key: key.to_string(),
        why: "an earlier run of the same script, seed, options and Assay read the same files (same sha256): its record is copied and no script ran; `assay verify` re-executes".into(),
    });
    Ok(m.to_json().into_bytes())
}

fn replayed_trace(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(text.len());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut step: Json = serde_json::from_str(line).map_err(|e| format!("a kept trace: {e}"))?;
        if let Some(o) = step.as_object_mut() {
            o.insert("cached".into(), Json::Bool(true));
            o.insert("seconds".into(), json!(0.0));
        }
        out.push_str(&serde_json::to_string(&step).map_err(|e| e.to_string())?);
        out.push('\n');
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_paths_stay_inside_the_run_folder() {
        for bad in ["", "../x", "a/../b", "/etc/passwd", "a//b", ".calls/x", "a\\b", "./a"] {
            assert!(!safe_relative(bad), "{bad:?} passed");
        }
        for good in ["results.json", "artifacts/record-x.png", "artifacts/streams/a.npy"] {
            assert!(safe_relative(good), "{good:?} refused");
        }
    }

    #[test]
    fn a_replayed_trace_says_every_step_was_cached_and_took_no_time() {
        let t = b"{\"step\":1,\"tool\":\"model\",\"seconds\":0.5}\n{\"step\":2,\"tool\":\"run\",\"seconds\":1.5,\"cached\":false}\n";
        let out = String::from_utf8(replayed_trace(t).unwrap_or_default()).unwrap_or_default();
        let steps: Vec<Json> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        assert_eq!(steps.len(), 2);
        for s in &steps {
            assert_eq!(s["cached"], Json::Bool(true));
            assert_eq!(s["seconds"], json!(0.0));
        }
        assert_eq!(steps[1]["tool"], "run");
    }
}
