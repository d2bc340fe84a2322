//! A small builder for command-line tests: `Test::new().args(..).run()`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) fn assay_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_assay"))
}

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The call cache of this test process (stores of test processes that
/// have ended are removed the first time).
pub(crate) fn test_call_cache() -> PathBuf {
    static CLEANED: std::sync::Once = std::sync::Once::new();
    let tmp = std::env::temp_dir();
    CLEANED.call_once(|| {
        for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("assay-test-calls-") else { continue };
            if pid != std::process::id().to_string() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    });
    tmp.join(format!("assay-test-calls-{}", std::process::id()))
}

pub(crate) struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

pub(crate) struct Test {
    args: Vec<std::ffi::OsString>,
    dir: PathBuf,
    stdin: Option<Vec<u8>>,
    env: Vec<(String, String)>,
}

impl Test {
    pub(crate) fn new(dir: &Path) -> Self {
        Test { args: Vec::new(), dir: dir.to_path_buf(), stdin: None, env: Vec::new() }
    }
    pub(crate) fn arg(mut self, a: impl AsRef<str>) -> Self {
        self.args.push(a.as_ref().into());
        self
    }
    /// An argument that need not be UTF-8 (a file name of raw bytes).
    pub(crate) fn arg_os(mut self, a: impl AsRef<std::ffi::OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }
    pub(crate) fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, a: I) -> Self {
        self.args.extend(a.into_iter().map(|s| s.as_ref().into()));
        self
    }
    pub(crate) fn env(mut self, k: &str, v: impl AsRef<str>) -> Self {
        self.env.push((k.to_string(), v.as_ref().to_string()));
        self
    }
    pub(crate) fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }
    pub(crate) fn run(self) -> Output {
        let mut cmd = Command::new(assay_bin());
        cmd.args(&self.args).current_dir(&self.dir).stdout(Stdio::piped()).stderr(Stdio::piped());
        // Each test process starts with an empty call cache of its own, so
        // a test's first run computes (a later run of the same script may be
        // answered from it, as a user's would be).
        cmd.env("ASSAY_CALL_CACHE_DIR", test_call_cache());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().expect("spawn assay");
        if let Some(bytes) = self.stdin {
            let mut si = child.stdin.take().expect("stdin");
            // A script that fails early may close stdin first; that is fine.
            let _ = si.write_all(&bytes);
        }
        let out = child.wait_with_output().expect("wait for assay");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Writes files into a fresh temporary folder.
pub(crate) fn temp_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let p = dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, text).expect("write");
    }
    dir
}

/// The finished run folders under runs/<stem>/, sorted.
pub(crate) fn runs_of(dir: &Path, stem: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("runs").join(stem))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("manifest.json").exists()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Every `.assay` file under examples/ and tests/, sorted.
pub(crate) fn repo_scripts() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "assay") {
                out.push(p);
            }
        }
    }
    let root = repo_root();
    let mut out = Vec::new();
    walk(&root.join("examples"), &mut out);
    walk(&root.join("tests"), &mut out);
    out.sort();
    out
}
