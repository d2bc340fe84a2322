//! Attacks on what surrounds the sandboxed child: its environment, its life
//! after the parent's, and what reaches the terminal from text a script
//! supplies (issue: records that are never wrong). Each case was reproduced
//! on the code before the fix: the secrets were in /proc/self/environ, the
//! child ran on after its parent was killed, a script's escape sequence in a
//! diagnostic reached the terminal as colour, and a failed assert printed
//! its whole 100 MB message.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{assay_bin, temp_with, Test};

/// A script whose roots cover /proc cannot read a secret from its
/// environment: the child's environment is an allow-list.
#[test]
fn no_secret_of_the_callers_environment_reaches_the_child() {
    let t = temp_with(&[("e.assay", "show read_text(\"/proc/self/environ\")\n")]);
    let out = Test::new(t.path())
        .args(["run", "e.assay", "--allow-read", "/proc", "--no-cache"])
        .env("AWS_SECRET_ACCESS_KEY", "aws-s3cr3t-marker")
        .env("ASSAY_LLM_KEY", "sk-llm-marker")
        .env("ASSAY_AGENT_KEY", "sk-agent-marker")
        .env("GITHUB_TOKEN", "ghp-marker")
        .run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // The read worked (the allowed variables are there) ...
    assert!(out.stdout.contains("HOME="), "{}", out.stdout);
    // ... and no secret is in it.
    for secret in ["aws-s3cr3t-marker", "sk-llm-marker", "sk-agent-marker", "ghp-marker"] {
        assert!(!out.stdout.contains(secret), "{secret} reached the child: {}", out.stdout);
    }
}

/// The children of `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // pid (comm) state ppid ...: the fields after the last ')'.
        let ppid = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Kills `assay run` with `signal` while its child spins, and returns
/// whether the child was gone within 5 s.
fn child_dies_with_parent(dir: &Path, signal: &str) -> bool {
    let mut parent = Command::new(assay_bin())
        .args(["run", "spin.assay", "--timeout", "10m", "--no-cache"])
        .current_dir(dir)
        .env("ASSAY_CALL_CACHE_DIR", dir.join("calls"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    let child = loop {
        if let Some(c) = children(parent.id()).first() {
            break *c;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the child never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let it get into the script.
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(child));
    let st = Command::new("kill").args([signal, &parent.id().to_string()]).status().expect("kill");
    assert!(st.success());
    let _ = parent.wait();
    let killed = Instant::now();
    while killed.elapsed() < Duration::from_secs(5) {
        if !alive(child) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Leave nothing behind, whatever the outcome.
    let _ = Command::new("kill").args(["-KILL", &child.to_string()]).status();
    false
}

#[test]
fn the_child_dies_with_its_parent() {
    let t = temp_with(&[(
        "spin.assay",
        "let n = 0\nfor i in range(0, 100000) {\n  for j in range(0, 100000) {\n    n += j\n  }\n}\nshow n\n",
    )]);
    assert!(child_dies_with_parent(t.path(), "-KILL"), "SIGKILL of the parent left the child running");
    assert!(child_dies_with_parent(t.path(), "-TERM"), "SIGTERM of the parent left the child running");
}

/// Text a script supplies reaches the terminal only escaped: in a
/// diagnostic's message (a file name), in a raw control character of the
/// script's own source shown in the snippet, and in a failed assert.
#[test]
fn script_text_in_diagnostics_never_reaches_the_terminal_raw() {
    let t = temp_with(&[
        ("d.assay", "let x = read_text(\"\\u{1b}[31mred\\u{1b}]0;pwned\\u{7}.txt\")\n"),
        ("s.assay", "let x = 1 +\n# \u{1b}[31m raw in the source \u{1b}[0m\nlet y = \"\u{1b}[5m\" + [1]\n"),
    ]);
    // (Coloured rendering, on a terminal, is checked in the interpreter's
    // own tests: `terminal_safe` comes before either renderer.)
    for script in ["d.assay", "s.assay"] {
        let out = Test::new(t.path()).args(["run", script]).run();
        assert!([1, 2].contains(&out.code), "{script}: {}{}", out.stdout, out.stderr);
        let all = format!("{}{}", out.stdout, out.stderr);
        for raw in ["\u{1b}[31m", "\u{1b}]0;", "\u{7}", "\u{1b}[5m"] {
            assert!(!all.contains(raw), "{script}: {raw:?} reached the terminal: {all:?}");
        }
    }
}

#[test]
fn a_huge_failed_assert_is_clipped() {
    let t =
        temp_with(&[("a.assay", "let s = join(map(range(0, 2000000), i => \"xxxxxxxxxx\"), \"\")\nassert false, s\n")]);
    let out = Test::new(t.path()).args(["run", "a.assay"]).run();
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stdout.len() < 200_000, "{} bytes printed", out.stdout.len());
    assert!(out.stdout.contains("more characters"), "{}", &out.stdout[..out.stdout.len().min(300)]);
}
