//! Command-line behaviour: exit codes, JSON output, stdin, determinism of
//! every example, the sandbox (including symlinks), diff, verify, and runs
//! that are cut off.

use std::path::Path;

use crate::support::{repo_root, runs_of, temp_with, Test};

#[test]
fn check_json_reports_all_three_errors() {
    let dir = temp_with(&[(
        "bad.assay",
        "let xs = [1, 2, 3]\nlet m = mean(xz)\nlet t = top_k(xs, k: 2, largets: true)\nrecord \"x\", \"a\" - 1\n",
    )]);
    let out = Test::new(dir.path()).args(["check", "--json", "bad.assay"]).run();
    assert_eq!(out.code, 1);
    let j = out.json();
    assert_eq!(j["ok"], false);
    let diags = j["diagnostics"].as_array().expect("array");
    assert_eq!(diags.len(), 3, "{diags:#?}");
    let codes: Vec<&str> = diags.iter().map(|d| d["code"].as_str().unwrap_or("")).collect();
    assert_eq!(codes, ["assay::unknown-name", "assay::unknown-argument", "assay::type"]);
    assert_eq!((diags[0]["line"].as_u64(), diags[0]["column"].as_u64()), (Some(2), Some(14)));
    assert!(diags.iter().all(|d| d["help"].as_str().is_some_and(|h| !h.is_empty())));
    assert_eq!(diags[0]["file"], "bad.assay");
}

#[test]
fn malformed_script_names_file_line_and_column_and_exits_1() {
    let dir = temp_with(&[("m.assay", "let a = 1\nlet b = (a +\n")]);
    let out = Test::new(dir.path()).args(["run", "m.assay"]).run();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("m.assay:2:9"), "the unclosed `(` is pointed at: {}", out.stderr);
    assert!(out.stderr.contains("help:"), "{}", out.stderr);
    assert!(runs_of(dir.path(), "m").is_empty(), "a script that fails its check leaves no run");
}

#[test]
fn garbage_never_panics() {
    let inputs: Vec<Vec<u8>> = vec![
        vec![0xff, 0xfe, 0x00, 0x41],
        b"(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((".to_vec(),
        "1".repeat(100_000).into_bytes(),
        format!("let x = {}1", "-".repeat(5000)).into_bytes(),
        format!("let x = 1{}", "+1".repeat(10_000)).into_bytes(),
        b"\"{\"{\"{\"{\"{".to_vec(),
        b"record \"x\", [1, 2][1e300]".to_vec(),
        b"let r = 0..1e300\nrecord \"x\", len(r)".to_vec(),
        b"record \"x\", range(0, 1e18)".to_vec(),
        b"record \"x\", zeros([1e9, 1e9])".to_vec(),
        b"fn f(x) { return f }\nrecord \"x\", f(1)(2)(3)".to_vec(),
        b"`unterminated raw".to_vec(),
        b"\xef\xbb\xbfrecord \"bom\", 1".to_vec(),
    ];
    for (i, input) in inputs.iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Test::new(dir.path()).args(["run", "-", "--json"]).stdin(input.clone()).run();
        assert!((0..=3).contains(&out.code), "input {i}: exit {} stderr {}", out.code, out.stderr);
        assert!(!out.stderr.contains("internal error"), "input {i} hit a bug: {}", out.stderr);
    }
}

#[test]
fn stdin_script_and_json_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Test::new(dir.path())
        .args(["run", "-", "--json"])
        .stdin("seed 3\nshow \"hello\", 1 + 1\nrecord \"x\", 2 * 21\nassert true\n")
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.json();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["results"]["records"]["x"], 42);
    assert_eq!(j["shows"][0]["title"], "hello");
    assert_eq!(j["shows"][0]["text"], "2");
    let run_dir = j["run_dir"].as_str().expect("run_dir");
    assert!(
        dir.path().join(run_dir).join("manifest.json").is_file() || Path::new(run_dir).join("manifest.json").is_file()
    );
    assert_eq!(runs_of(dir.path(), "stdin").len(), 1);
}

#[test]
fn exit_codes() {
    let dir = temp_with(&[
        ("ok.assay", "record \"x\", 1\n"),
        ("fails.assay", "assert 1 > 2, \"one is not above two\"\n"),
        ("crash.assay", "record \"x\", [1][3]\n"),
    ]);
    let code = |args: &[&str]| Test::new(dir.path()).args(args).run().code;
    assert_eq!(code(&["run", "ok.assay"]), 0);
    assert_eq!(code(&["run", "fails.assay"]), 3);
    assert_eq!(code(&["run", "crash.assay"]), 1);
    assert_eq!(code(&["run", "missing.assay"]), 2);
    assert_eq!(code(&["frobnicate"]), 2);
    assert_eq!(code(&["run"]), 2);
    // A failed assert and a runtime error still leave a complete record.
    assert_eq!(runs_of(dir.path(), "fails").len(), 1);
    let crash = runs_of(dir.path(), "crash");
    assert_eq!(crash.len(), 1);
    let manifest = std::fs::read_to_string(crash[0].join("manifest.json")).expect("manifest");
    assert!(manifest.contains("\"status\": \"error\""), "{manifest}");
}

#[test]
fn reading_outside_the_roots_is_refused_even_through_symlinks() {
    let outside = temp_with(&[("secret.txt", "top secret\n")]);
    let dir = temp_with(&[
        ("up.assay", "record \"s\", read_text(\"../secret.txt\")\n"),
        ("abs.assay", &format!("record \"s\", read_text(\"{}\")\n", outside.path().join("secret.txt").display())),
        ("link.assay", "record \"s\", read_text(\"link.txt\")\n"),
        ("linkdir.assay", "record \"s\", read_text(\"d/secret.txt\")\n"),
        ("inside.txt", "fine\n"),
        ("ok.assay", "record \"s\", read_text(\"inside.txt\")\n"),
    ]);
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.path().join("link.txt")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("d")).expect("symlink dir");
    for script in ["up.assay", "abs.assay", "link.assay", "linkdir.assay"] {
        let out = Test::new(dir.path()).args(["run", script, "--json"]).run();
        assert_eq!(out.code, 1, "{script}: {}", out.stdout);
        let j = out.json();
        let msg = j["diagnostics"][0]["message"].as_str().unwrap_or("");
        assert!(msg.contains("outside the folders this script may read"), "{script}: {msg}");
        assert!(j["diagnostics"][0]["help"].as_str().unwrap_or("").contains("--allow-read"));
        assert!(!out.stdout.contains("top secret"));
    }
    assert_eq!(Test::new(dir.path()).args(["run", "ok.assay"]).run().code, 0);
    // --allow-read opens the other folder.
    let out = Test::new(dir.path())
        .args(["run", "link.assay", "--json", "--allow-read", outside.path().to_str().expect("path")])
        .run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.json()["results"]["records"]["s"], "top secret\n");
}

#[test]
fn manifest_records_digests_of_files_read() {
    let dir = temp_with(&[
        ("data.txt", "abc"),
        ("m.rhai", "fn f(x) { x }"),
        ("r.assay", "use \"m.rhai\" as m\nrecord \"t\", m.f(read_text(\"data.txt\"))\n"),
    ]);
    assert_eq!(Test::new(dir.path()).args(["run", "r.assay"]).run().code, 0);
    let run = &runs_of(dir.path(), "r")[0];
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).expect("manifest")).expect("json");
    let inputs = m["inputs"].as_object().expect("inputs");
    let digest_of =
        |name: &str| inputs.iter().find(|(k, _)| k.ends_with(name)).map(|(_, v)| v.as_str().unwrap_or("").to_string());
    // sha256("abc")
    assert_eq!(
        digest_of("data.txt").as_deref(),
        Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert!(digest_of("m.rhai").is_some());
    let trace = std::fs::read_to_string(run.join("trace.jsonl")).expect("trace");
    let lines: Vec<serde_json::Value> = trace.lines().map(|l| serde_json::from_str(l).expect("jsonl")).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["tool"], "read_text");
    assert_eq!(lines[1]["tool"], "m.f");
    for l in &lines {
        assert_eq!(l["args"].as_str().map(str::len), Some(64));
        assert_eq!(l["output"].as_str().map(str::len), Some(64));
        assert!(l["seconds"].as_f64().is_some());
    }
    assert_eq!(m["seed"], 0);
}

#[test]
fn seed_changes_results_and_flag_overrides() {
    let dir = temp_with(&[("r.assay", "seed 1\nrecord \"x\", rand()\n")]);
    let get = |extra: &[&str]| {
        let out = Test::new(dir.path()).args(["run", "r.assay", "--json"]).args(extra).run();
        out.json()["results"]["records"]["x"].as_f64().expect("x")
    };
    let a = get(&[]);
    assert_eq!(a, get(&[]));
    assert_ne!(a, get(&["--seed", "2"]));
}

#[test]
fn diff_and_verify() {
    let dir = temp_with(&[
        ("data.txt", "3"),
        ("r.assay", "let n = num(read_text(\"data.txt\"))\nrecord \"n\", n\nrecord \"fixed\", 1\n"),
    ]);
    assert_eq!(Test::new(dir.path()).args(["run", "r.assay"]).run().code, 0);
    std::fs::write(dir.path().join("data.txt"), "4").expect("write");
    assert_eq!(Test::new(dir.path()).args(["run", "r.assay"]).run().code, 0);
    let runs = runs_of(dir.path(), "r");
    let (a, b) = (runs[0].to_str().expect("a"), runs[1].to_str().expect("b"));
    let out = Test::new(dir.path()).args(["diff", a, b, "--json"]).run();
    assert_eq!(out.code, 0);
    let j = out.json();
    assert_eq!(j["same"], false);
    let changes = j["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0]["name"], "record n");
    assert_eq!((changes[0]["old"].clone(), changes[0]["new"].clone()), (serde_json::json!(3), serde_json::json!(4)));
    let text = Test::new(dir.path()).args(["diff", a, b]).run().stdout;
    assert!(text.contains("~ record n: 3 -> 4"), "{text}");
    // The second run reproduces; the first no longer does, and says why.
    assert_eq!(Test::new(dir.path()).args(["verify", b]).run().code, 0);
    let v = Test::new(dir.path()).args(["verify", a, "--json"]).run();
    assert_eq!(v.code, 3);
    let j = v.json();
    assert_eq!(j["verified"], false);
    assert!(j["changed_inputs"][0].as_str().unwrap_or("").contains("data.txt changed"));
}

#[test]
fn a_run_cut_off_never_looks_finished() {
    // A run killed mid-way leaves no numbered folder; a half-written one
    // keeps its .incomplete name and is refused by diff and verify.
    let dir = temp_with(&[
        ("slow.rhai", "fn spin(n) { let i = 0; while i < n { i += 1; } i }"),
        ("slow.assay", "use \"slow.rhai\" as s\nfor i in 0..400 { record \"r{i}\", s.spin(300000) }\n"),
    ]);
    let mut child = std::process::Command::new(crate::support::assay_bin())
        .args(["run", "slow.assay"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(runs_of(dir.path(), "slow").is_empty(), "a killed run must not look finished");

    let half = dir.path().join("runs/slow/.incomplete-1-2");
    std::fs::create_dir_all(&half).expect("mkdir");
    std::fs::write(half.join("results.json"), "{}").expect("write");
    for cmd in
        [vec!["verify", half.to_str().expect("p")], vec!["diff", half.to_str().expect("p"), half.to_str().expect("p")]]
    {
        let out = Test::new(dir.path()).args(&cmd).run();
        assert_eq!(out.code, 2, "{cmd:?}");
        assert!(out.stderr.contains("incomplete run"), "{}", out.stderr);
    }
}

#[test]
fn report_html_is_self_contained() {
    let dir = temp_with(&[("r.assay", "show \"numbers\", [1, 2]\nrecord \"x\", 1\nassert 1 < 2, \"order\"\n")]);
    assert_eq!(Test::new(dir.path()).args(["run", "r.assay"]).run().code, 0);
    let html = std::fs::read_to_string(runs_of(dir.path(), "r")[0].join("report.html")).expect("report");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<h2>numbers"));
    assert!(html.contains("1 &lt; 2"), "the assert's claim is escaped");
    assert!(!html.contains("http://") && !html.contains("https://"), "no external resources");
}

#[test]
fn tools_json_lists_every_tool_with_signature_and_examples() {
    let out = Test::new(&repo_root()).args(["tools", "--json"]).run();
    assert_eq!(out.code, 0);
    let j = out.json();
    let tools = j["tools"].as_array().expect("tools");
    assert!(tools.len() >= 60, "{} tools", tools.len());
    for t in tools {
        assert!(t["signature"].as_str().is_some_and(|s| s.contains('(')));
        assert!(!t["doc"].as_str().unwrap_or("").is_empty(), "{} has no doc", t["name"]);
        assert!(!t["examples"].as_array().map(|a| a.is_empty()).unwrap_or(true), "{} has no example", t["name"]);
    }
}

/// Warnings are shown and the script still runs: `check` lists them
/// (`--json` as `warnings`, with severity `warning`), and a tool that needs
/// a setting the run lacks is warned of at check time, not only when it
/// fails.
#[test]
fn the_checker_warns_of_what_runs_but_is_almost_never_meant() {
    let dir = temp_with(&[(
        "w.assay",
        "let xs = [3, 1, 2]\nxs.sort()\nlet im = svg(\"<svg xmlns='http://www.w3.org/2000/svg'/>\")\nlet d = describe(im)\n",
    )]);
    let check = |url: &str| Test::new(dir.path()).args(["check", "w.assay", "--json"]).env("ASSAY_LLM_URL", url).run();
    let out = check("");
    assert_eq!(out.code, 0, "warnings do not fail the check: {}{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["ok"], true);
    let codes: Vec<&str> = j["warnings"].as_array().unwrap().iter().map(|w| w["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["assay::discarded-result", "assay::not-configured"], "{j}");
    assert!(j["warnings"].as_array().unwrap().iter().all(|w| w["severity"] == "warning"));
    assert_eq!(j["warnings"][0]["line"], 2);
    // With an endpoint configured, `describe` is not warned of.
    let j = check("http://127.0.0.1:9/v1").json();
    assert_eq!(j["warnings"].as_array().unwrap().len(), 1, "{j}");
    // The text form prints them and says the script checks.
    let text = Test::new(dir.path()).args(["check", "w.assay"]).env("ASSAY_LLM_URL", "").run();
    assert_eq!(text.code, 0);
    assert!(text.stderr.contains("the result of `sort` is thrown away"), "{}", text.stderr);
    assert!(text.stdout.contains("2 warning(s)"), "{}", text.stdout);
}

#[test]
fn a_large_trace_is_compact_and_assay_trace_reads_it_back_as_jsonl() {
    // 40,000 calls on in-memory values: no digests (results.json pins what
    // they computed), so the trace is small per call, and past 1 MiB it is
    // kept gzip-compressed. A call that reads a file keeps its digests.
    let dir = temp_with(&[
        ("data.txt", "abc"),
        ("r.assay", "let xs = map(range(40000), x => abs(x - 3))\nrecord \"n\", sum(xs)\nrecord \"t\", read_text(\"data.txt\")\n"),
    ]);
    let store = tempfile::tempdir().expect("store");
    let run = |dir: &Path| {
        let out =
            Test::new(dir).env("ASSAY_CALL_CACHE_DIR", store.path().to_str().unwrap()).args(["run", "r.assay"]).run();
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    };
    run(dir.path());
    let first = runs_of(dir.path(), "r")[0].clone();
    assert!(first.join("trace.jsonl.gz").is_file() && !first.join("trace.jsonl").exists());
    // Past 16,384 calls the trace was spilled to the run folder (so memory
    // does not grow with it); the spill file is not part of the record.
    let names: Vec<String> = std::fs::read_dir(&first)
        .expect("record")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    let gz = std::fs::metadata(first.join("trace.jsonl.gz")).expect("gz").len();
    let out = Test::new(dir.path()).args(["trace", first.to_str().unwrap()]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).expect("jsonl")).collect();
    assert_eq!(lines.len(), 40_004, "one line per tool call");
    let steps: Vec<u64> = lines.iter().map(|l| l["step"].as_u64().expect("step")).collect();
    assert!(steps.windows(2).all(|w| w[1] == w[0] + 1), "every step, in order");
    let abs: Vec<&serde_json::Value> = lines.iter().filter(|l| l["tool"] == "abs").collect();
    assert_eq!(abs.len(), 40_000);
    assert!(abs.iter().all(|l| l.get("args").is_none() && l.get("output").is_none() && l["seconds"].is_f64()));
    let read = lines.iter().find(|l| l["tool"] == "read_text").expect("read_text");
    assert_eq!(read["args"].as_str().map(str::len), Some(64));
    assert_eq!(read["output"].as_str().map(str::len), Some(64));
    assert!(read["inputs"].as_object().is_some_and(|i| i.keys().any(|k| k.ends_with("data.txt"))));
    // Bytes per call, compressed: far below the ~210 of a digest per call.
    assert!(gz * 10 < out.stdout.len() as u64 && gz < 40_004 * 20, "{gz} bytes for 40,004 calls");
    // A rerun is replayed from the kept record: its trace, still
    // compressed, says every call was answered and took no time.
    run(dir.path());
    let second = runs_of(dir.path(), "r")[1].clone();
    let text = assay_interpreter::read_trace(&second, 1 << 30).expect("trace");
    let replayed: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("jsonl")).collect();
    assert_eq!(replayed.len(), 40_004);
    assert!(replayed.iter().all(|l| l["cached"] == true && l["seconds"] == 0.0));
    // A run that fails after many calls keeps every call, the failed one last.
    std::fs::write(
        dir.path().join("f.assay"),
        "let xs = map(range(20000), x => abs(x))\nlet t = read_text(\"nope.txt\")\n",
    )
    .expect("write");
    let out = Test::new(dir.path()).args(["run", "f.assay", "--no-cache"]).run();
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let failed = runs_of(dir.path(), "f")[0].clone();
    let text = assay_interpreter::read_trace(&failed, 1 << 30).expect("trace");
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("jsonl")).collect();
    assert_eq!(lines.len(), 20_003);
    assert!(lines.iter().enumerate().all(|(i, l)| l["step"] == i as u64 + 1));
    assert!(lines[20_002]["tool"] == "read_text" && lines[20_002]["failed"] == true, "{}", lines[20_002]);
    assert!(!failed.join(".trace-spill").exists());
    // A folder without a trace is a clear error.
    let out = Test::new(dir.path()).args(["trace", dir.path().to_str().unwrap()]).run();
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("no trace to read") && out.stderr.contains("help:"), "{}", out.stderr);
}
