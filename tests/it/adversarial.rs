//! The adversarial suite: scripts written as an attacker would, run through
//! the real command line (so the child process, its budgets and the kernel
//! sandbox are all in play). Every case must end with a diagnostic or a
//! normal result: no escape, no panic, no abort, no hang.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{runs_of, temp_with, Output, Test};

/// Budgets small enough that a bomb ends in seconds.
const MEM: &str = "512M";
const TIME: &str = "20s";

fn run(dir: &Path, script: &str) -> (Output, Duration) {
    let started = Instant::now();
    let out = Test::new(dir).args(["run", script, "--memory", MEM, "--timeout", TIME]).run();
    (out, started.elapsed())
}

/// The single run record of `stem`, parsed.
fn results(dir: &Path, stem: &str) -> serde_json::Value {
    let runs = runs_of(dir, stem);
    let last = runs.last().unwrap_or_else(|| panic!("no run record for {stem}"));
    serde_json::from_str(&std::fs::read_to_string(last.join("results.json")).unwrap()).unwrap()
}

fn assert_clean_end(out: &Output, what: &str) {
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains("internal error"), "{what} panicked:\n{all}");
    assert!(!all.contains("assay::crashed"), "{what} crashed:\n{all}");
    assert!([0, 1, 3].contains(&out.code), "{what} exited {}:\n{all}", out.code);
}

/// `outside/secret.txt` beside the script's folder `inside/`.
fn with_secret(files: &[(&str, &str)]) -> tempfile::TempDir {
    let t = temp_with(files);
    std::fs::create_dir_all(t.path().join("outside")).unwrap();
    std::fs::write(t.path().join("outside/secret.txt"), "TOPSECRET").unwrap();
    std::fs::create_dir_all(t.path().join("inside")).unwrap();
    t
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, text).unwrap();
}

#[test]
fn reads_outside_the_roots_are_refused_by_every_spelling() {
    let t = with_secret(&[]);
    let inside = t.path().join("inside");
    let abs = t.path().join("outside/secret.txt").display().to_string();
    for (i, path) in
        ["../outside/secret.txt", "./../outside/secret.txt", abs.as_str(), "/etc/shadow", "/proc/self/environ"]
            .iter()
            .enumerate()
    {
        write(&inside, &format!("r{i}.assay"), &format!("record \"x\", read_text(\"{path}\")\n"));
        let (out, _) = run(&inside, &format!("r{i}.assay"));
        assert_clean_end(&out, path);
        assert_eq!(out.code, 1, "{path}");
        let r = results(&inside, &format!("r{i}"));
        assert!(!r.to_string().contains("TOPSECRET"), "{path} leaked");
        assert!(r["error"]["message"].as_str().unwrap().contains("outside"), "{path}: {r}");
    }
}

#[test]
fn symlinks_out_of_the_roots_are_refused() {
    let t = with_secret(&[]);
    let inside = t.path().join("inside");
    std::os::unix::fs::symlink(t.path().join("outside/secret.txt"), inside.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(t.path().join("outside"), inside.join("dir")).unwrap();
    write(&inside, "a.assay", "record \"x\", read_text(\"link.txt\")\n");
    write(&inside, "b.assay", "record \"x\", read_text(\"dir/secret.txt\")\n");
    for s in ["a", "b"] {
        let (out, _) = run(&inside, &format!("{s}.assay"));
        assert_clean_end(&out, s);
        assert!(!results(&inside, s).to_string().contains("TOPSECRET"));
        assert_eq!(out.code, 1);
    }
}

#[test]
fn the_kernel_refuses_an_outside_read_even_when_the_in_process_check_is_bypassed() {
    let t = with_secret(&[]);
    let inside = t.path().join("inside");
    write(&inside, "ok.txt", "fine");
    write(&inside, "k.assay", "record \"x\", read_text(\"../outside/secret.txt\")\n");
    write(&inside, "control.assay", "record \"x\", read_text(\"ok.txt\")\n");
    let bypass =
        |script: &str| Test::new(&inside).args(["run", script]).env("ASSAY_TEST_BYPASS_INPROCESS_CHECKS", "1").run();
    // The bypass really turns the check off: an inside read still works...
    let control = bypass("control.assay");
    assert_eq!(control.code, 0, "{}{}", control.stdout, control.stderr);
    // ...and the outside reads are stopped by Landlock alone, including the
    // process's own environment (where an LLM key lives).
    write(&inside, "env.assay", "record \"x\", read_text(\"/proc/self/environ\")\n");
    let env = Test::new(&inside)
        .args(["run", "env.assay"])
        .env("ASSAY_TEST_BYPASS_INPROCESS_CHECKS", "1")
        .env("ASSAY_LLM_KEY", "sk-environsecret")
        .run();
    assert_eq!(env.code, 1, "{}{}", env.stdout, env.stderr);
    assert!(!results(&inside, "env").to_string().contains("sk-environsecret"));
    let out = bypass("k.assay");
    assert_clean_end(&out, "bypassed read");
    assert_eq!(out.code, 1);
    let r = results(&inside, "k");
    assert!(!r.to_string().contains("TOPSECRET"), "the kernel let the read through: {r}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs_of(&inside, "k")[0].join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["sandbox"]["landlock"], "enforced", "{manifest}");
    assert_eq!(manifest["sandbox"]["execute"], "nothing");
}

#[test]
fn a_kernel_without_landlock_is_reported_not_silent() {
    let t = temp_with(&[("n.assay", "record \"x\", 1\n")]);
    let out = Test::new(t.path()).args(["run", "n.assay"]).env("ASSAY_TEST_PRETEND_NO_LANDLOCK", "1").run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stderr.matches("Landlock").count(), 1, "said once: {}", out.stderr);
    assert!(out.stderr.contains("not available"), "{}", out.stderr);
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs_of(t.path(), "n")[0].join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["sandbox"]["landlock"], "not available on this kernel", "{m}");
}

#[test]
fn svg_references_to_files_are_refused() {
    let t = with_secret(&[]);
    let inside = t.path().join("inside");
    let abs = t.path().join("outside/secret.txt").display().to_string();
    for (i, href) in
        ["../outside/secret.txt", abs.as_str(), "/dev/zero", "/dev/stdin", "file:///etc/passwd"].iter().enumerate()
    {
        let script = format!(
            "let img = svg(`<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" viewBox=\"0 0 10 10\"><image href=\"{href}\" xlink:href=\"{href}\" width=\"10\" height=\"10\"/></svg>`)\nrecord \"w\", img.width\n"
        );
        write(&inside, &format!("s{i}.assay"), &script);
        let (out, took) = run(&inside, &format!("s{i}.assay"));
        assert_clean_end(&out, href);
        assert_eq!(out.code, 1, "{href}: {}{}", out.stdout, out.stderr);
        assert!(took < Duration::from_secs(15), "{href} took {took:?}");
        let r = results(&inside, &format!("s{i}"));
        assert!(r["error"]["message"].as_str().unwrap().contains("may not read files"), "{href}: {r}");
    }
}

#[test]
fn svg_filter_bombs_are_refused_quickly() {
    let t = temp_with(&[]);
    for (i, filter) in [
        "<feTurbulence baseFrequency=\"0.05\" numOctaves=\"1000000000\"/>",
        "<feMorphology operator=\"dilate\" radius=\"100000\"/>",
        "<feGaussianBlur stdDeviation=\"1000000\"/>",
    ]
    .iter()
    .enumerate()
    {
        let script = format!(
            "let img = svg(`<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\"><filter id=\"f\">{filter}</filter><rect width=\"10\" height=\"10\" filter=\"url(#f)\"/></svg>`, width: 4096)\nrecord \"w\", img.width\n"
        );
        write(t.path(), &format!("f{i}.assay"), &script);
        let (out, took) = run(t.path(), &format!("f{i}.assay"));
        assert_clean_end(&out, filter);
        assert_eq!(out.code, 1, "{filter}: {}{}", out.stdout, out.stderr);
        assert!(took < Duration::from_secs(10), "{filter} took {took:?}");
    }
}

#[test]
fn globs_cannot_climb_out_or_loop() {
    let t = with_secret(&[]);
    let inside = t.path().join("inside");
    std::fs::write(t.path().join("outside/x.png"), b"not a png").unwrap();
    std::fs::create_dir_all(inside.join("loop")).unwrap();
    std::os::unix::fs::symlink(".", inside.join("loop/a")).unwrap();
    std::os::unix::fs::symlink(".", inside.join("loop/b")).unwrap();
    std::os::unix::fs::symlink("/", inside.join("loop/root")).unwrap();
    for (i, pattern) in
        [".?/outside/*.png", ".*/outside/*.png", "../outside/*.png", ".?/.?/.?/**/*.x", "**/*.webp", "/etc/*"]
            .iter()
            .enumerate()
    {
        write(&inside, &format!("g{i}.assay"), &format!("record \"n\", images(\"{pattern}\").size\n"));
        let (out, took) = run(&inside, &format!("g{i}.assay"));
        assert_clean_end(&out, pattern);
        assert_eq!(out.code, 1, "{pattern} matched something: {}", out.stdout);
        assert!(took < Duration::from_secs(15), "{pattern} took {took:?}");
        let r = results(&inside, &format!("g{i}"));
        assert!(!r.to_string().contains("x.png"), "{pattern} named the outside file: {r}");
    }
}

#[test]
fn pipes_and_devices_are_not_read() {
    let t = temp_with(&[
        ("a.assay", "record \"x\", read_text(\"pipe\")\n"),
        ("b.assay", "record \"x\", image(\"zero\")\n"),
    ]);
    assert!(std::process::Command::new("mkfifo").arg(t.path().join("pipe")).status().unwrap().success());
    std::os::unix::fs::symlink("/dev/zero", t.path().join("zero")).unwrap();
    for s in ["a", "b"] {
        let (out, took) = run(t.path(), &format!("{s}.assay"));
        assert_clean_end(&out, s);
        assert_eq!(out.code, 1);
        assert!(took < Duration::from_secs(10), "{s} hung for {took:?}");
    }
}

#[test]
fn a_script_named_dots_writes_only_under_runs() {
    let t = temp_with(&[("...assay", "record \"x\", 1\n"), ("..assay", "record \"x\", 1\n")]);
    for s in ["...assay", "..assay"] {
        let (out, _) = run(t.path(), s);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    }
    // Everything the runs wrote is below runs/<name>/, and nothing beside runs/.
    let top: Vec<String> =
        std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let mut top = top.into_iter().filter(|n| !n.ends_with(".assay")).collect::<Vec<_>>();
    top.sort();
    assert_eq!(top, vec!["runs"]);
    for e in std::fs::read_dir(t.path().join("runs")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.') && name != "..", "stem `{name}`");
    }
}

#[test]
fn run_ids_do_not_wrap_and_killed_runs_are_cleaned() {
    let t = temp_with(&[("w.assay", "record \"x\", 1\n")]);
    std::fs::create_dir_all(t.path().join("runs/w/4294967295")).unwrap();
    // A folder left by a killed run (its process, 999999999, does not exist).
    std::fs::create_dir_all(t.path().join("runs/w/.incomplete-999999999-1")).unwrap();
    let (out, _) = run(t.path(), "w.assay");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(t.path().join("runs/w/4294967296/results.json").is_file(), "{}", out.stdout);
    assert!(!t.path().join("runs/w/.incomplete-999999999-1").exists());
    assert!(out.stderr.contains("removed 1 unfinished run folder"), "{}", out.stderr);
}

/// Each bomb ends with a diagnostic naming its budget (or a located refusal)
/// and an error run record, well within the time budget.
#[test]
fn bombs_end_with_a_diagnostic_and_a_record() {
    let cases: &[(&str, &str, &str)] = &[
        ("strdouble", "let s = \"ab\"\nfor i in 0..64 {\n  s = s + s\n}\nrecord \"n\", len(s)\n", "too-large"),
        ("listdouble", "let s = [1]\nfor i in 0..64 {\n  s = s + s\n}\nrecord \"n\", len(s)\n", "too-large"),
        ("replace", "let s = \"aaaaaaaaaa\"\nfor i in 0..40 {\n  s = replace(s, \"a\", \"aaaaaaaa\")\n}\nrecord \"n\", len(s)\n", "tool"),
        ("tensors", "let xs = []\nfor i in 0..1000 {\n  xs = xs + [zeros([10000, 10000], value: i)]\n}\nrecord \"n\", len(xs)\n", "budget-memory"),
        ("recursion", "fn f(n) {\n  if n == 0 {\n    return 1\n  }\n  return f(n - 1) + f(n - 1)\n}\nrecord \"n\", f(60)\n", "budget-time"),
        ("loops", "let n = 0\nfor i in 0..100000 {\n  for j in 0..100000 {\n    n = n + 1\n  }\n}\nrecord \"n\", n\n", "budget-time"),
        ("deeprecord", "let x = [1]\nfor i in 0..20000 {\n  x = [x]\n}\nrecord \"x\", x\n", "record-too-deep"),
        ("bigrange", "for i in 0..1000000000000000 {\n  break\n}\nrecord \"ok\", 1\n", ""),
        // One tensor the budget holds: storing it in the call cache (a
        // second copy) must not end the run.
        ("onebig", "let x = zeros([10000, 10000], value: 1)\nrecord \"n\", x.shape\n", ""),
    ];
    let t = temp_with(&[]);
    for (name, script, code) in cases {
        write(t.path(), &format!("{name}.assay"), script);
        let started = Instant::now();
        // Time bombs get 5 s; the others a budget they cannot reach first,
        // even on a loaded machine, so that the memory budget is what ends them.
        let timeout = if code.ends_with("time") { "5s" } else { "120s" };
        let out =
            Test::new(t.path()).args(["run", &format!("{name}.assay"), "--memory", MEM, "--timeout", timeout]).run();
        let took = started.elapsed();
        assert_clean_end(&out, name);
        assert!(took < Duration::from_secs(if code.ends_with("time") { 30 } else { 125 }), "{name} took {took:?}");
        eprintln!("bomb {name}: {took:?}");
        let r = results(t.path(), name);
        if code.is_empty() {
            assert_eq!(r["status"], "ok", "{name}: {r}");
        } else {
            assert_eq!(r["status"], "error", "{name}: {r}");
            assert_eq!(r["error"]["code"], format!("assay::{code}"), "{name}: {r}");
            assert!(r["error"]["line"].is_number(), "{name} has no line: {r}");
        }
    }
}

/// ONNX Runtime refused memory inside a kernel (std::bad_alloc: the budget
/// caps the address space, so a large activation fails when asked for):
/// the budget's error at the call, with the budget's help, not the tool's.
#[test]
fn the_model_runtime_running_out_of_the_budget_is_a_budget_error() {
    let t = temp_with(&[]);
    write(
        t.path(),
        "batch.assay",
        "let m = model(\"efficientnet-lite0\")\nlet x = zeros([400, 3, 224, 224])\nlet y = run(m, x)\n",
    );
    let out = Test::new(t.path()).args(["run", "batch.assay", "--memory", "1G", "--timeout", "120s"]).run();
    assert_clean_end(&out, "batch");
    let r = results(t.path(), "batch");
    assert_eq!(r["error"]["code"], "assay::budget-memory", "{r}");
    assert_eq!(r["error"]["line"], 3, "{r}");
    assert!(out.stderr.contains("raise it with --memory"), "{}", out.stderr);
}

#[test]
fn crashes_found_by_hand_are_diagnostics() {
    let t = temp_with(&[("deep.rhai", "fn depth(x) { 1 }\n")]);
    let cases: &[(&str, &str)] = &[
        ("zeros", "record \"x\", zeros([4294967296, 4294967296])\n"),
        ("zeros2", "record \"x\", zeros([1e300, 0])\n"),
        ("clip", "record \"x\", clip(1, 0/0, 1)\n"),
        ("heatmap", "record \"x\", plot(\"heatmap\", zeros([10000, 10000]))\n"),
        ("reshape", "record \"x\", reshape(1, [4294967296, 4294967296])\n"),
        ("rhai", "use \"deep.rhai\" as m\nlet x = [1]\nfor i in 0..100000 {\n  x = [x]\n}\nrecord \"d\", m.depth(x)\n"),
    ];
    for (name, script) in cases {
        write(t.path(), &format!("{name}.assay"), script);
        let (out, _) = run(t.path(), &format!("{name}.assay"));
        assert_clean_end(&out, name);
        assert_eq!(out.code, 1, "{name}: {}{}", out.stdout, out.stderr);
        let r = results(t.path(), name);
        let code = r["error"]["code"].as_str().unwrap_or("");
        assert!(!code.contains("budget"), "{name} should be refused before it costs memory: {r}");
    }
}

#[test]
fn verify_trusts_nothing_in_the_run_folder() {
    let t = with_secret(&[]);
    let inside = t.path().join("inside");
    write(&inside, "v.assay", "record \"x\", 1\n");
    let (out, _) = run(&inside, "v.assay");
    assert_eq!(out.code, 0);
    let run_dir = runs_of(&inside, "v")[0].clone();
    let verify = || Test::new(&inside).args(["verify", run_dir.to_str().unwrap(), "--timeout", "20s"]).run();
    assert_eq!(verify().code, 0);

    // A replaced script is refused, not re-run and "verified".
    std::fs::write(run_dir.join("script.assay"), "record \"x\", read_text(\"../outside/secret.txt\")\n").unwrap();
    let v = verify();
    assert_eq!(v.code, 3, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("does not match"), "{}", v.stdout);

    // A manifest that widens its roots and points the script at the secret:
    // the digest is made to match, the roots are ignored, the read is refused.
    let evil = "record \"x\", read_text(\"../outside/secret.txt\")\n";
    std::fs::write(run_dir.join("script.assay"), evil).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("manifest.json")).unwrap()).unwrap();
    use sha2::Digest;
    m["script"]["sha256"] = hex::encode(sha2::Sha256::digest(evil.as_bytes())).into();
    m["allowed_roots"] = serde_json::json!(["/"]);
    m["inputs"] = serde_json::json!({"/dev/zero": "00", "/etc/shadow": "00"});
    std::fs::write(run_dir.join("manifest.json"), m.to_string()).unwrap();
    let started = Instant::now();
    let v = verify();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(v.code, 3, "{}{}", v.stdout, v.stderr);
    assert!(!format!("{}{}", v.stdout, v.stderr).contains("TOPSECRET"));

    // A FIFO as results.json: diff and verify refuse it at once.
    std::fs::remove_file(run_dir.join("results.json")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(run_dir.join("results.json")).status().unwrap().success());
    let started = Instant::now();
    let v = verify();
    let d = Test::new(&inside).args(["diff", run_dir.to_str().unwrap(), run_dir.to_str().unwrap()]).run();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(v.code, 2, "{}{}", v.stdout, v.stderr);
    assert_eq!(d.code, 2, "{}{}", d.stdout, d.stderr);
}

#[test]
fn control_characters_never_reach_the_terminal_raw() {
    let t = temp_with(&[(
        "c.assay",
        "show \"\\u{1b}[2J title\", \"\\u{1b}]0;pwned\\u{7}\"\nassert false, \"\\u{1b}[8m hidden\"\n",
    )]);
    let (out, _) = run(t.path(), "c.assay");
    assert_clean_end(&out, "control");
    assert!(!out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{7}'), "{:?}", out.stdout);
    assert!(!out.stderr.contains("\u{1b}]0;"), "{:?}", out.stderr);
}

#[test]
fn a_closed_stdout_is_a_quiet_exit() {
    let t = temp_with(&[]);
    let mut child = std::process::Command::new(crate::support::assay_bin())
        .args(["tools", "--json"])
        .current_dir(t.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked") && !err.contains("internal error"), "{err}");
}

#[test]
fn floats_round_trip_through_diff() {
    let t = temp_with(&[("f.assay", "record \"x\", 0.1 + 0.2\n")]);
    let (out, _) = run(t.path(), "f.assay");
    assert_eq!(out.code, 0);
    let (out, _) = run(t.path(), "f.assay");
    assert_eq!(out.code, 0);
    let runs = runs_of(t.path(), "f");
    let b = runs[1].join("results.json");
    let text = std::fs::read_to_string(&b).unwrap();
    assert!(text.contains("0.30000000000000004"), "{text}");
    // Change the last digit only.
    std::fs::write(&b, text.replace("0.30000000000000004", "0.3000000000000001")).unwrap();
    let d = Test::new(t.path()).args(["diff", runs[0].to_str().unwrap(), runs[1].to_str().unwrap(), "--json"]).run();
    assert_eq!(d.json()["same"], false, "{}", d.stdout);
}

/// Crashes found by hand that need a real model (EfficientNet-Lite0, cached
/// by the examples): a capture of the graph's own input read freed memory;
/// an empty batch and an absurd `k` aborted.
#[test]
fn model_crashes_found_by_hand_are_fixed() {
    let t = temp_with(&[
        (
            "cap.assay",
            "let m = model(\"efficientnet-lite0\")\nlet c = capture(m, zeros([1, 3, 224, 224], value: 0.25), \"input\")\nrecord \"min\", min(c.input)\nrecord \"max\", max(c.input)\n",
        ),
        (
            "empty.assay",
            "let m = model(\"efficientnet-lite0\")\nlet u = unit(m, \"/_blocks.15/Relu6_output_0\", channel: 42)\nrecord \"a\", u(zeros([0, 3, 224, 224]))\n",
        ),
        (
            "k.assay",
            "let m = model(\"efficientnet-lite0\")\nlet u = unit(m, \"/_blocks.15/Relu6_output_0\", channel: 42)\nlet top = exemplars(u, take(emoji(), 3), k: 4294967296)\nrecord \"n\", len(top.images)\n",
        ),
    ]);
    for _ in 0..2 {
        let (out, _) = run(t.path(), "cap.assay");
        assert_clean_end(&out, "capture of the input");
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    }
    let runs = runs_of(t.path(), "cap");
    let a = std::fs::read(runs[0].join("results.json")).unwrap();
    assert_eq!(a, std::fs::read(runs[1].join("results.json")).unwrap(), "a capture of the input must not vary");
    let r = results(t.path(), "cap");
    assert_eq!((r["records"]["min"].as_f64(), r["records"]["max"].as_f64()), (Some(0.25), Some(0.25)), "{r}");

    let (out, _) = run(t.path(), "empty.assay");
    assert_clean_end(&out, "empty batch");
    assert_eq!(out.code, 1);
    assert!(results(t.path(), "empty")["error"]["message"].as_str().unwrap().contains("no rows"));

    let (out, _) = run(t.path(), "k.assay");
    assert_clean_end(&out, "huge k");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(results(t.path(), "k")["records"]["n"], 3);
}
