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
    stop_parent(dir, signal).0
}

/// As `child_dies_with_parent`, with the parent's exit code too.
fn stop_parent(dir: &Path, signal: &str) -> (bool, Option<i32>) {
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
    let code = parent.wait().ok().and_then(|s| s.code());
    let killed = Instant::now();
    while killed.elapsed() < Duration::from_secs(5) {
        if !alive(child) {
            return (true, code);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Leave nothing behind, whatever the outcome.
    let _ = Command::new("kill").args(["-KILL", &child.to_string()]).status();
    (false, code)
}

/// A stop signal to `assay run` alone (not its process group) is passed on:
/// the child is stopped, the run folder holds a record that says the run
/// was interrupted (never a half-written one, never one that reads as
/// finished), and the command ends as a shell expects (128 + the signal).
/// Before, SIGINT and SIGTERM ended the parent at once and left an
/// `.incomplete` folder.
#[test]
fn a_stopped_run_leaves_a_record_that_says_so() {
    for (signal, code) in [("-INT", 130), ("-TERM", 143), ("-HUP", 129)] {
        let t = temp_with(&[(
            "spin.assay",
            "let n = 0\nfor i in range(0, 100000) {\n  for j in range(0, 100000) {\n    n += j\n  }\n}\nshow n\n",
        )]);
        let (gone, exit) = stop_parent(t.path(), signal);
        assert!(gone, "{signal}: the child outlived its parent");
        assert_eq!(exit, Some(code), "{signal}: exit code");
        let runs = t.path().join("runs").join("spin");
        let names: Vec<String> = std::fs::read_dir(&runs)
            .expect("runs folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["0001"], "{signal}: {names:?}");
        let results = std::fs::read_to_string(runs.join("0001").join("results.json")).expect("results.json");
        assert!(results.contains("assay::interrupted"), "{signal}: {results}");
        assert!(results.contains("running line"), "{signal}: the record says where it stopped: {results}");
    }
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

/// Pruning the call cache removes only names Assay writes: a store folder
/// that holds anything else (a careless ASSAY_CALL_CACHE_DIR) is left
/// alone, and the run says why.
#[test]
fn pruning_never_deletes_what_assay_did_not_write() {
    let t = temp_with(&[("p.assay", "record \"a\", read_text(\"p.assay\")\n")]);
    let store = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(store.path().join("ab")).unwrap();
    std::fs::write(store.path().join("ab/thesis.tex"), "years of work").unwrap();
    let run = |store: &Path| {
        Test::new(t.path())
            .args(["run", "p.assay"])
            .env("ASSAY_CALL_CACHE_DIR", store.to_str().unwrap())
            .env("ASSAY_CACHE_MAX_BYTES", "0")
            .env("ASSAY_CACHE_MIN_SECONDS", "0")
            .run()
    };
    let out = run(store.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(store.path().join("ab/thesis.tex").exists(), "a file Assay did not write was deleted");
    assert!(out.stderr.contains("not pruned"), "{}", out.stderr);
    // A store of Assay's own is pruned to its bound as before: filled
    // first, then a bound of 0 leaves at most the entry written last (the
    // run's replay record, kept after the pruning).
    let own = tempfile::tempdir().unwrap();
    let count = || -> usize {
        std::fs::read_dir(own.path())
            .unwrap()
            .flatten()
            .map(|d| std::fs::read_dir(d.path()).map(|r| r.count()).unwrap_or(0))
            .sum()
    };
    let fill = Test::new(t.path())
        .args(["run", "p.assay"])
        .env("ASSAY_CALL_CACHE_DIR", own.path().to_str().unwrap())
        .env("ASSAY_CACHE_MIN_SECONDS", "0")
        .run();
    assert_eq!(fill.code, 0, "{}", fill.stderr);
    assert!(count() >= 2, "the call and the run were kept");
    std::fs::write(t.path().join("p.assay"), "record \"b\", read_text(\"p.assay\")\n").unwrap();
    let out = run(own.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(count() <= 1, "a bound of 0 bytes leaves at most the last entry, found {}", count());
}

/// The script file goes through the one read door: a FIFO is refused at
/// once (not waited on), a link to /dev/zero is no regular file (not read
/// to 1 GB), and a script past the size limit is refused after reading at
/// most one byte past it (from a file or from standard input).
#[test]
fn the_script_file_is_read_through_the_one_read_door() {
    let t = temp_with(&[]);
    let fifo = t.path().join("fifo.assay");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    std::os::unix::fs::symlink("/dev/zero", t.path().join("zero.assay")).unwrap();
    std::fs::write(t.path().join("big.assay"), "# x\n".repeat(300_000)).unwrap();
    for (script, why) in [
        ("fifo.assay", "not a regular file"),
        ("zero.assay", "not a regular file"),
        ("big.assay", "longer than the limit"),
    ] {
        for cmd in ["run", "check"] {
            let started = Instant::now();
            let out = Test::new(t.path()).args([cmd, script]).run();
            assert_eq!(out.code, 2, "{cmd} {script}: {}{}", out.stdout, out.stderr);
            assert!(out.stderr.contains(why), "{cmd} {script}: {}", out.stderr);
            assert!(started.elapsed() < Duration::from_secs(20), "{cmd} {script} took {:?}", started.elapsed());
        }
    }
    let out = Test::new(t.path()).args(["run", "-"]).stdin("# x\n".repeat(300_000)).run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("longer than the limit"), "{}", out.stderr);
    // `inspect` reads its model the same way (before, a FIFO hung it).
    for model in ["fifo.assay", "zero.assay"] {
        let started = Instant::now();
        let out = Test::new(t.path()).args(["inspect", model]).run();
        assert_eq!(out.code, 2, "inspect {model}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains("not a regular file"), "inspect {model}: {}", out.stderr);
        assert!(started.elapsed() < Duration::from_secs(20), "inspect {model} took {:?}", started.elapsed());
    }
}

/// A disk budget per run, enforced like memory and time: a run that writes
/// more into its run folder ends with a diagnostic naming the budget and
/// an error record; with room, the same script finishes.
#[test]
fn a_run_that_writes_past_its_disk_budget_is_stopped_with_a_record() {
    let t = temp_with(&[("d.assay", "let t = zeros([3000, 3000], value: 0.5)\nrecord \"big\", t\n")]);
    let out = Test::new(t.path()).args(["run", "d.assay", "--disk", "16M", "--no-cache"]).run();
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("assay::budget-disk") && out.stderr.contains("--disk"), "{}", out.stderr);
    let runs = crate::support::runs_of(t.path(), "d");
    let results = std::fs::read_to_string(runs[0].join("results.json")).unwrap();
    assert!(results.contains("assay::budget-disk"), "{results}");
    let out = Test::new(t.path()).args(["run", "d.assay", "--disk", "200M", "--no-cache"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// `diff` holds both records in memory: a results.json past its bound (a
/// sparse 300 MB file here) is refused by its size, before it is read.
#[test]
fn diff_refuses_a_record_too_large_to_hold() {
    let t = temp_with(&[("a/results.json", "{}"), ("a/manifest.json", "{}")]);
    std::fs::create_dir_all(t.path().join("b")).unwrap();
    let f = std::fs::File::create(t.path().join("b/results.json")).unwrap();
    f.set_len(300 << 20).unwrap();
    let started = Instant::now();
    let out = Test::new(t.path()).args(["diff", "a", "b"]).run();
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("300 MiB") && out.stderr.contains("at most 256 MiB"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));
}
