//! The call cache on disk: `ASSAY_CACHE_DIR/calls/` (by default
//! `~/.cache/assay/calls/`; `ASSAY_CALL_CACHE_DIR` moves it), one file per
//! entry named by its key.
//!
//! The sandboxed child only reads the store; results it computes are
//! staged in its own run folder (`.calls/`, the one place it may write),
//! and the parent publishes them after the child ends: each entry renamed
//! into the store (atomic, so concurrent runs never see half an entry; the
//! last of two identical writers wins), entries the child used touched (the
//! least recently used go first), and the store pruned to its size bound
//! (`ASSAY_CACHE_MAX_BYTES`, 4 GiB by default). An entry is checked (its
//! own checksum, then every file it depends on) before it is used, so a
//! damaged or stale entry is a miss, never a wrong answer.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use assay_interpreter::CallCache;
use serde::{Deserialize, Serialize};

/// Whether a run reads and fills the call cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum CacheUse {
    /// Neither read nor fill it.
    #[default]
    Off,
    /// Answer calls from it and store new results.
    On,
    /// Run every call (as `verify` does) and store the results.
    Refresh,
}

const DEFAULT_MAX_BYTES: u64 = 4 << 30;
const STAGE: &str = ".calls";
const HITS: &str = "hits";

/// The store's folder.
/// `ASSAY_CALL_CACHE_DIR` moves it (alone) elsewhere.
pub(crate) fn dir() -> PathBuf {
    match std::env::var_os("ASSAY_CALL_CACHE_DIR") {
        Some(d) => PathBuf::from(d),
        None => assay_stdlib::fetch::cache_dir().join("calls"),
    }
}

fn max_bytes() -> u64 {
    std::env::var("ASSAY_CACHE_MAX_BYTES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_MAX_BYTES)
}

fn valid_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Whether `shard/file` is a name Assay writes in the store: an entry (a
/// call's or a replay's, named by its key), a blob (`blob-SHA256`), or one
/// of those being written (`KEY.tmpPID`, `blob-SHA256.tmpPID`).
fn store_name(shard: &str, file: &str) -> bool {
    let stem =
        file.split_once(".tmp").map_or(file, |(a, pid)| if pid.bytes().all(|b| b.is_ascii_digit()) { a } else { "" });
    let key = stem.strip_prefix("blob-").unwrap_or(stem);
    valid_key(key) && key.starts_with(shard)
}

/// Says once per process that a store holding files Assay did not write
/// is not pruned.
fn refuse_prune(store: &Path, name: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        eprintln!(
            "note: the call cache {} holds `{}`, which Assay did not write; it is not pruned (give Assay a folder of its own with ASSAY_CALL_CACHE_DIR)",
            assay_interpreter::escape_unsafe(&store.display().to_string()),
            assay_interpreter::escape_unsafe(name)
        );
    });
}

fn entry_path(store: &Path, key: &str) -> PathBuf {
    store.join(&key[..2]).join(key)
}

/// The child's view: reads the store, writes into the run folder.
pub(crate) struct ChildCache {
    store: PathBuf,
    stage: PathBuf,
    read: bool,
    hits: Mutex<Vec<String>>,
}

impl ChildCache {
    pub(crate) fn new(mode: CacheUse, run_folder: &Path) -> Option<ChildCache> {
        if mode == CacheUse::Off {
            return None;
        }
        let stage = run_folder.join(STAGE);
        std::fs::create_dir_all(&stage).ok()?;
        Some(ChildCache { store: dir(), stage, read: mode == CacheUse::On, hits: Mutex::new(Vec::new()) })
    }

    /// Leaves the keys of the entries used for the parent to touch.
    pub(crate) fn finish(&self) {
        let hits = self.hits.lock().map(|h| h.join("\n")).unwrap_or_default();
        let _ = std::fs::write(self.stage.join(HITS), hits);
    }
}

/// This build of Assay: its version and a digest of the sources it was
/// built from (build.rs). Part of every call-cache key: two builds of one
/// version whose code differs never share an entry.
pub const BUILD: &str = concat!(env!("CARGO_PKG_VERSION"), "+", env!("ASSAY_BUILD_DIGEST"));

impl CallCache for ChildCache {
    fn build(&self) -> String {
        BUILD.to_string()
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        if !self.read || !valid_key(key) {
            return None;
        }
        let bytes = assay_interpreter::read_regular(&entry_path(&self.store, key), max_bytes()).ok()?;
        if let Ok(mut h) = self.hits.lock() {
            h.push(key.to_string());
        }
        Some(bytes)
    }

    fn file_digest(&self, path: &Path) -> Option<String> {
        // Only Assay's own files (built-in models and data sets).
        let real = path.canonicalize().ok()?;
        let own = assay_stdlib::fetch::cache_dir().canonicalize().ok()?;
        if !real.starts_with(&own) || real.starts_with(&self.store) {
            return None;
        }
        assay_stdlib::fetch::sha256_file(&real).ok()
    }

    fn min_seconds(&self) -> f64 {
        std::env::var("ASSAY_CACHE_MIN_SECONDS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(assay_interpreter::cache_min_seconds())
    }

    fn put(&self, key: &str, entry: &[u8]) {
        if !valid_key(key) {
            return;
        }
        let tmp = self.stage.join(format!(".{key}.tmp"));
        if std::fs::write(&tmp, entry).is_ok() && std::fs::rename(&tmp, self.stage.join(key)).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// What publishing did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Published {
    pub stored: usize,
    pub evicted: usize,
}

/// The parent's half: moves the child's staged entries into the store,
/// touches the ones it used, prunes the store, and removes the staging
/// folder from the run folder. Never fails a run: a store that cannot be
/// written only means nothing is kept.
pub(crate) fn publish(run_folder: &Path) -> Published {
    let stage = run_folder.join(STAGE);
    let mut done = Published::default();
    if !stage.is_dir() {
        return done;
    }
    let store = dir();
    let hits =
        assay_interpreter::read_regular(&stage.join(HITS), 64 << 20).ok().and_then(|b| String::from_utf8(b).ok());
    if let Some(text) = hits {
        for key in text.lines().filter(|k| valid_key(k)) {
            let p = entry_path(&store, key);
            // Touched through the read door: a FIFO or a link planted in
            // the store is left alone, never waited on.
            if let Ok(f) = assay_interpreter::open_regular(&p, u64::MAX) {
                let _ = f.get_ref().set_modified(std::time::SystemTime::now());
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(&stage) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !valid_key(&name) || !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let dest = entry_path(&store, &name);
            let ok = dest.parent().is_some_and(|d| std::fs::create_dir_all(d).is_ok());
            // Same file system (both under the user's cache) is not assumed:
            // copy to a temporary name in the store, then rename.
            let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
            if ok && std::fs::copy(e.path(), &tmp).is_ok() {
                if std::fs::rename(&tmp, &dest).is_ok() {
                    done.stored += 1;
                } else {
                    let _ = std::fs::remove_file(&tmp);
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&stage);
    done.evicted = prune(&store, max_bytes());
    done
}

/// Removes the least recently used entries until the store holds at most
/// `max` bytes; returns how many it removed.
pub(crate) fn prune(store: &Path, max: u64) -> usize {
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
    let Ok(shards) = std::fs::read_dir(store) else { return 0 };
    for shard in shards.flatten() {
        let name = shard.file_name().to_string_lossy().into_owned();
        let is_shard = name.len() == 2 && valid_key(&format!("{name}{}", "0".repeat(62)));
        if !is_shard || !shard.file_type().is_ok_and(|t| t.is_dir()) {
            // Not a folder Assay made: the store is shared with something
            // else, and nothing in it is Assay's to delete.
            refuse_prune(store, &name);
            return 0;
        }
        let Ok(entries) = std::fs::read_dir(shard.path()) else { continue };
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            if !store_name(&name, &file) {
                refuse_prune(store, &format!("{name}/{file}"));
                return 0;
            }
            if let Ok(m) = e.metadata() {
                if m.is_file() {
                    files.push((m.modified().unwrap_or(std::time::UNIX_EPOCH), m.len(), e.path()));
                }
            }
        }
    }
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    let mut removed = 0;
    for (_, len, path) in files {
        if total <= max {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total = total.saturating_sub(len);
            removed += 1;
        }
    }
    removed
}

/// The sha256 of a file a run read, as the parent checks it (replay
/// lookups, merges): Assay's own cached files (models, data sets) through
/// the digest memo; anything else through the one read door
/// (`digest_regular`: no blocking open, regular files, at most what a
/// script may read). `None` for a file that cannot be read so.
pub(crate) fn input_digest(path: &Path) -> Option<String> {
    input_digest_resolved(path, &path.canonicalize().ok()?)
}

/// As `input_digest`, for a caller that has resolved `path` to `real`
/// already (a replay lookup checks each of hundreds of inputs).
pub(crate) fn input_digest_resolved(path: &Path, real: &Path) -> Option<String> {
    // Assay's own cache, resolved once per process (its place is fixed).
    static OWN: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let own = OWN.get_or_init(|| assay_stdlib::fetch::cache_dir().canonicalize().ok());
    if own.as_ref().is_some_and(|o| real.starts_with(o)) {
        let meta = std::fs::symlink_metadata(real).ok()?;
        return meta.is_file().then(|| assay_stdlib::fetch::sha256_file(real).ok()).flatten();
    }
    assay_interpreter::digest_regular(path, assay_interpreter::MAX_READ_BYTES).ok()
}
