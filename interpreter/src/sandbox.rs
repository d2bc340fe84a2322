//! Where a script may read. Every path a script names is resolved here:
//! relative to the script's folder, checked lexically against the allowed
//! roots before the file system is touched, then checked again after
//! symlinks are followed. A file is opened once and the opened file is what
//! is checked and read (the kernel's own record of which file the
//! descriptor refers to), so a folder swapped for a symlink between a check
//! and a read cannot redirect the read. Only regular files are read, and
//! their size is checked before a byte is read. Nothing else in Assay opens
//! a script's paths; in the command-line runner the kernel (Landlock) holds
//! the same line underneath.

#![allow(clippy::disallowed_methods, reason = "the sandbox itself: every read a script asks for happens here")]

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// The largest file any reader takes unless it asks for less.
pub const MAX_READ_BYTES: u64 = 4 << 30;
/// How many folder entries one glob may visit.
pub(crate) const MAX_GLOB_VISITS: usize = 200_000;
/// How deep one glob may descend below its literal prefix.
pub(crate) const MAX_GLOB_DEPTH: usize = 32;

#[derive(Debug, Clone)]
pub struct Sandbox {
    base: PathBuf,
    roots: Vec<PathBuf>,
    /// Test-only: skip the in-process checks to prove the kernel's hold.
    bypass: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SandboxError {
    Outside { path: String, roots: Vec<PathBuf> },
    NotFound { path: String, resolved: PathBuf },
    NotAFile { path: String, what: &'static str },
    TooLarge { path: String, size: u64, limit: u64 },
    BadPattern { pattern: String, message: String },
    Io { path: String, message: String },
}

impl SandboxError {
    pub fn message(&self) -> String {
        match self {
            SandboxError::Outside { path, .. } => {
                format!("`{path}` is outside the folders this script may read")
            }
            SandboxError::NotFound { path, .. } => format!("file not found: `{path}`"),
            SandboxError::NotAFile { path, what } => format!("`{path}` is {what}, not a regular file"),
            SandboxError::TooLarge { path, size, limit } => {
                format!("`{path}` is {size} bytes, more than the {limit} this reader takes")
            }
            SandboxError::BadPattern { pattern, message } => format!("bad pattern `{pattern}`: {message}"),
            SandboxError::Io { path, message } => format!("cannot read `{path}`: {message}"),
        }
    }
    pub fn help(&self) -> String {
        match self {
            SandboxError::Outside { roots, .. } => format!(
                "a script reads only under its allowed roots (its own folder{}); to allow another folder run with `--allow-read DIR`",
                if roots.len() > 1 { format!(" and {} more given with --allow-read", roots.len() - 1) } else { String::new() }
            ),
            SandboxError::NotFound { .. } => "paths are relative to the script's folder; check the spelling".into(),
            SandboxError::NotAFile { .. } => "name a regular file (not a folder, device, pipe or socket)".into(),
            SandboxError::TooLarge { .. } => "use a smaller file, or split it".into(),
            SandboxError::BadPattern { .. } => {
                "write a pattern relative to the script's folder, e.g. \"photos/**/*.jpg\", without `..`".into()
            }
            SandboxError::Io { .. } => "check that the path is a readable file".into(),
        }
    }
}

/// Removes `.` and resolves `..` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn is_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', ']', '{', '}'])
}

impl Sandbox {
    /// `base` is the script's folder (always allowed); `extra` are more roots.
    pub fn new(base: &Path, extra: &[PathBuf]) -> std::io::Result<Self> {
        let base = base.canonicalize()?;
        let mut roots = vec![base.clone()];
        for r in extra {
            let r = r.canonicalize()?;
            if !roots.contains(&r) {
                roots.push(r);
            }
        }
        Ok(Sandbox { base, roots, bypass: false })
    }

    /// Relative paths resolve against `base`, which need not be a root
    /// (verify re-runs a script whose folder the person may not allow).
    pub fn with_roots(base: &Path, roots: &[PathBuf]) -> std::io::Result<Self> {
        let base = base.canonicalize()?;
        let mut out = Vec::new();
        for r in roots {
            let r = r.canonicalize()?;
            if !out.contains(&r) {
                out.push(r);
            }
        }
        Ok(Sandbox { base, roots: out, bypass: false })
    }

    /// Turns off the in-process checks, so that a test can show the kernel
    /// refusing a read by itself. Never used outside that test.
    pub fn bypass_checks_for_kernel_test(mut self) -> Self {
        self.bypass = true;
        self
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    fn inside(&self, p: &Path) -> bool {
        self.bypass || self.roots.iter().any(|r| p.starts_with(r))
    }

    fn outside(&self, path: &str) -> SandboxError {
        SandboxError::Outside { path: path.into(), roots: self.roots.clone() }
    }

    /// Resolves a path named by a script to an existing file or folder
    /// under the allowed roots.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, SandboxError> {
        let lexical = self.lexical(path)?;
        let real = match lexical.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SandboxError::NotFound { path: path.into(), resolved: lexical })
            }
            Err(e) => return Err(SandboxError::Io { path: path.into(), message: e.to_string() }),
        };
        if !self.inside(&real) {
            return Err(self.outside(path));
        }
        Ok(real)
    }

    /// A path as named, made absolute against the script's folder with
    /// `.` and `..` removed but no link followed (what a later run naming
    /// the same path will read, wherever its links then point).
    pub fn named(&self, path: &str) -> Result<PathBuf, SandboxError> {
        self.lexical(path)
    }

    fn lexical(&self, path: &str) -> Result<PathBuf, SandboxError> {
        if path.contains('\0') {
            return Err(SandboxError::Io {
                path: path.escape_debug().to_string(),
                message: "it contains a NUL".into(),
            });
        }
        let lexical = normalize(&self.base.join(path));
        if !self.inside(&lexical) {
            return Err(self.outside(path));
        }
        Ok(lexical)
    }

    /// Reads a whole regular file under the roots (at most `MAX_READ_BYTES`).
    pub fn read(&self, path: &str) -> Result<(PathBuf, Vec<u8>), SandboxError> {
        self.read_limited(path, MAX_READ_BYTES)
    }

    /// Opens the file once, checks the opened file (where the kernel says
    /// it is, that it is a regular file, its size) and reads that file.
    pub fn read_limited(&self, path: &str, limit: u64) -> Result<(PathBuf, Vec<u8>), SandboxError> {
        let (real, file, len) = self.open_checked(path, limit)?;
        let io = |e: std::io::Error| SandboxError::Io { path: path.into(), message: e.to_string() };
        let mut bytes = Vec::with_capacity(len as usize);
        // The file may grow after the check: read no more than the limit allows.
        file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
        if bytes.len() as u64 > limit {
            return Err(SandboxError::TooLarge { path: path.into(), size: bytes.len() as u64, limit });
        }
        Ok((real, bytes))
    }

    /// Opens a regular file under the roots for reading as a stream: the
    /// checks of [`Sandbox::read_limited`] on the opened file, which is
    /// returned with its real path and size (at most `limit`).
    pub fn open_checked(&self, path: &str, limit: u64) -> Result<(PathBuf, std::fs::File, u64), SandboxError> {
        let lexical = self.lexical(path)?;
        let io = |e: std::io::Error| SandboxError::Io { path: path.into(), message: e.to_string() };
        // Non-blocking so that opening a FIFO cannot hang; it is refused below.
        let file =
            match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(&lexical)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(SandboxError::NotFound { path: path.into(), resolved: lexical })
                }
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    // The kernel sandbox (Landlock) answers EACCES for what it
                    // forbids: a path that leads outside the roots is reported so.
                    let leads_outside = match lexical.canonicalize() {
                        Ok(real) => !self.roots.iter().any(|r| real.starts_with(r)),
                        Err(_) => true,
                    };
                    return Err(if leads_outside { self.outside(path) } else { io(e) });
                }
                Err(e) => return Err(io(e)),
            };
        let real = opened_path(&file).map_err(io)?;
        if !self.inside(&real) {
            return Err(self.outside(path));
        }
        let meta = file.metadata().map_err(io)?;
        let ft = meta.file_type();
        if !ft.is_file() {
            use std::os::unix::fs::FileTypeExt;
            let what = if ft.is_dir() {
                "a folder"
            } else if ft.is_fifo() {
                "a pipe"
            } else if ft.is_socket() {
                "a socket"
            } else if ft.is_char_device() || ft.is_block_device() {
                "a device"
            } else {
                "not a file"
            };
            return Err(SandboxError::NotAFile { path: path.into(), what });
        }
        if meta.len() > limit {
            return Err(SandboxError::TooLarge { path: path.into(), size: meta.len(), limit });
        }
        Ok((real, file, meta.len()))
    }

    /// The files under the roots whose path relative to the script's folder
    /// matches `pattern` (`*`, `?`, `[...]` within a name, `**` across
    /// folders), sorted. Walks only below the pattern's literal prefix,
    /// never through a symlinked folder (so no loop), never outside the
    /// roots, and gives up past `MAX_GLOB_VISITS` entries. A `..` in any
    /// spelling is refused: the walk reads folder entries, which never
    /// include `.` or `..`, so a wildcard cannot climb either.
    pub fn glob(&self, pattern: &str) -> Result<Vec<(String, PathBuf)>, SandboxError> {
        let bad = |m: &str| SandboxError::BadPattern { pattern: pattern.into(), message: m.into() };
        if pattern.starts_with('/') {
            return Err(bad("it must be relative to the script's folder"));
        }
        if pattern.contains('\\') || pattern.contains('\0') {
            return Err(bad("it may not contain `\\` or NUL"));
        }
        let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        if parts.contains(&"..") {
            return Err(bad("`..` is not allowed"));
        }
        if parts.is_empty() {
            return Err(bad("it is empty"));
        }
        let literal: Vec<&str> = parts.iter().take_while(|p| !is_glob_meta(p)).copied().collect();
        let rest = &parts[literal.len()..];
        let matcher = glob::Pattern::new(&parts.join("/")).map_err(|e| bad(&e.to_string()))?;
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let start_rel = literal.join("/");
        let start = if start_rel.is_empty() { self.base.clone() } else { self.base.join(&start_rel) };
        if !self.inside(&normalize(&start)) {
            return Err(self.outside(pattern));
        }
        let max_depth = if rest.iter().any(|p| p.contains("**")) { MAX_GLOB_DEPTH } else { rest.len() };
        let mut out = Vec::new();
        if rest.is_empty() {
            // No wildcard: one file.
            if let Ok(real) = self.resolve(&start_rel) {
                if real.is_file() {
                    out.push((start_rel, real));
                }
            }
            return Ok(out);
        }
        let real_start = match start.canonicalize() {
            Ok(p) => p,
            Err(_) => return Ok(out),
        };
        if !self.inside(&real_start) {
            return Err(self.outside(pattern));
        }
        let mut visits = 0usize;
        // (folder on disk, its path relative to the script's folder, depth)
        let mut stack = vec![(real_start, start_rel, 0usize)];
        while let Some((dir, rel, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                visits += 1;
                if visits > MAX_GLOB_VISITS {
                    return Err(bad(&format!("it visits more than {MAX_GLOB_VISITS} files and folders; narrow it")));
                }
                let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
                let child_rel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    // Symlinked folders are not entered (file_type does not follow links).
                    if depth + 1 < max_depth {
                        stack.push((e.path(), child_rel, depth + 1));
                    }
                    continue;
                }
                if !matcher.matches_with(&child_rel, opts) {
                    continue;
                }
                // A file or a symlink to one: resolved and checked like any read.
                if let Ok(real) = e.path().canonicalize() {
                    if self.inside(&real) && real.is_file() {
                        out.push((child_rel, real));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Where the kernel says an open file is (after every symlink it followed).
fn opened_path(file: &File) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

#[cfg(test)]
#[path = "sandbox_test.rs"]
mod tests;

/// Artifact names are plain file names: no folders, no dot-files.
pub fn safe_artifact_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then(|| name.to_string())
}
