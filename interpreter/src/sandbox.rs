//! Where a script may read. Every path a script names is resolved here:
//! relative to the script's folder, checked lexically against the allowed
//! roots before the file system is touched, then checked again after
//! symlinks are followed. Nothing else in Assay opens a script's paths.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Sandbox {
    base: PathBuf,
    roots: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SandboxError {
    Outside { path: String, roots: Vec<PathBuf> },
    NotFound { path: String, resolved: PathBuf },
    Io { path: String, message: String },
}

impl SandboxError {
    pub fn message(&self) -> String {
        match self {
            SandboxError::Outside { path, .. } => {
                format!("`{path}` is outside the folders this script may read")
            }
            SandboxError::NotFound { path, .. } => format!("file not found: `{path}`"),
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
        Ok(Sandbox { base, roots })
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    fn inside(&self, p: &Path) -> bool {
        self.roots.iter().any(|r| p.starts_with(r))
    }

    /// Resolves a path named by a script to an existing file or folder
    /// under the allowed roots.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, SandboxError> {
        let joined = self.base.join(path);
        let lexical = normalize(&joined);
        if !self.inside(&lexical) {
            return Err(SandboxError::Outside { path: path.into(), roots: self.roots.clone() });
        }
        let real = match lexical.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SandboxError::NotFound { path: path.into(), resolved: lexical })
            }
            Err(e) => return Err(SandboxError::Io { path: path.into(), message: e.to_string() }),
        };
        if !self.inside(&real) {
            return Err(SandboxError::Outside { path: path.into(), roots: self.roots.clone() });
        }
        Ok(real)
    }

    /// Reads a whole file under the roots.
    pub fn read(&self, path: &str) -> Result<(PathBuf, Vec<u8>), SandboxError> {
        let real = self.resolve(path)?;
        if real.is_dir() {
            return Err(SandboxError::Io { path: path.into(), message: "it is a folder".into() });
        }
        std::fs::read(&real)
            .map(|b| (real, b))
            .map_err(|e| SandboxError::Io { path: path.into(), message: e.to_string() })
    }
}
