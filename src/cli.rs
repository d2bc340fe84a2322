//! Command-line parsing and the subcommands.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use assay_interpreter::{
    diff_results, execute, manifest_json, prepare, read_run, report_html, results_json, script_seed, trace_jsonl,
    write_run, Diag, ManifestInfo, Outcome, Registry, RunFiles, Sandbox, SourceFile, Status, Value,
};
use clap::{Parser, Subcommand};
use serde_json::json;

pub const EXIT_OK: u8 = 0;
pub const EXIT_SCRIPT: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_ASSERT: u8 = 3;

#[derive(Parser)]
#[command(name = "assay", version, about = "Checked, reproducible interpretability experiments", long_about = None)]
#[command(after_help = "Exit codes: 0 ok, 1 script error, 2 usage error, 3 failed assert or failed verify.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check and run a script; write its run record under runs/<name>/<id>/.
    Run {
        /// The .assay script, or - to read it from standard input.
        script: String,
        /// Print results (or diagnostics) as one JSON document.
        #[arg(long)]
        json: bool,
        /// Another folder the script may read (repeatable).
        #[arg(long = "allow-read", value_name = "DIR")]
        allow_read: Vec<PathBuf>,
        /// Override the script's `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Where run records go.
        #[arg(long = "runs-dir", value_name = "DIR", default_value = "runs")]
        runs_dir: PathBuf,
    },
    /// Check a script without running it: report every error at once.
    Check {
        /// The .assay script, or - for standard input.
        script: String,
        #[arg(long)]
        json: bool,
        #[arg(long = "allow-read", value_name = "DIR")]
        allow_read: Vec<PathBuf>,
    },
    /// List every tool with its signature, doc and examples.
    Tools {
        #[arg(long)]
        json: bool,
        /// Print docs/tools.md.
        #[arg(long, conflicts_with = "json")]
        markdown: bool,
    },
    /// Compare two runs record by record.
    Diff {
        a: PathBuf,
        b: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List a model's inputs, outputs and every intermediate tensor, grouped by module.
    Inspect {
        /// The .onnx file.
        model: PathBuf,
        #[arg(long)]
        json: bool,
        /// Only tensors whose name matches this glob, e.g. "*Relu*".
        #[arg(long)]
        pattern: Option<String>,
    },
    /// Find or fetch ONNX Runtime (and cache it), and say what was done.
    Setup {
        #[arg(long)]
        json: bool,
    },
    /// Re-execute a run and check that its results.json comes out identical.
    Verify {
        run: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    let registry = assay_stdlib::registry();
    match cli.command {
        Command::Run { script, json, allow_read, seed, runs_dir } => {
            cmd_run(&registry, &script, json, &allow_read, seed, &runs_dir)
        }
        Command::Check { script, json, allow_read } => cmd_check(&registry, &script, json, &allow_read),
        Command::Tools { json, markdown } => {
            if markdown {
                print!("{}", crate::docs::tools_markdown(&registry));
            } else if json {
                println!("{}", pretty(&crate::docs::tools_json(&registry)));
            } else {
                print!("{}", crate::docs::tools_text(&registry));
            }
            EXIT_OK
        }
        Command::Diff { a, b, json } => cmd_diff(&a, &b, json),
        Command::Verify { run, json } => cmd_verify(&registry, &run, json),
        Command::Setup { json } => cmd_setup(json),
        Command::Inspect { model, json, pattern } => crate::inspect::cmd_inspect(&model, json, pattern.as_deref()),
    }
}

fn pretty(j: &serde_json::Value) -> String {
    serde_json::to_string_pretty(j).unwrap_or_default()
}

fn usage_error(json: bool, message: &str, help: &str) -> u8 {
    if json {
        println!("{}", pretty(&json!({"status": "usage-error", "error": message, "help": help})));
    } else {
        eprintln!("error: {message}\n  help: {help}");
    }
    EXIT_USAGE
}

fn print_diags(diags: &[Diag], json: bool) {
    if json {
        return;
    }
    let color = std::io::stderr().is_terminal();
    for d in diags {
        let text = if color { d.render_color(100) } else { d.render_plain(100) };
        eprint!("{text}");
    }
    if diags.len() > 1 {
        eprintln!("{} errors", diags.len());
    }
}

/// The script's text, the name it is reported under, its folder and stem.
struct Script {
    file: Arc<SourceFile>,
    dir: PathBuf,
    stem: String,
}

fn load_script(arg: &str) -> Result<Script, (String, String)> {
    if arg == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            (format!("cannot read the script from standard input: {e}"), "pipe UTF-8 text into `assay run -`".into())
        })?;
        let dir = std::env::current_dir().map_err(|e| (e.to_string(), "run from an existing folder".into()))?;
        return Ok(Script { file: SourceFile::new("<stdin>", text), dir, stem: "stdin".into() });
    }
    let path = Path::new(arg);
    let bytes = std::fs::read(path).map_err(|e| {
        (format!("cannot read script `{arg}`: {e}"), "check the path; scripts are .assay text files".to_string())
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| (format!("`{arg}` is not UTF-8 text"), "an .assay script must be UTF-8 text".to_string()))?;
    let abs = path.canonicalize().map_err(|e| (e.to_string(), "check the path".to_string()))?;
    let dir = abs.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("script").to_string();
    Ok(Script { file: SourceFile::new(arg, text), dir, stem })
}

fn make_sandbox(dir: &Path, allow: &[PathBuf], json: bool) -> Result<Sandbox, u8> {
    Sandbox::new(dir, allow).map_err(|e| {
        usage_error(json, &format!("an --allow-read folder cannot be used: {e}"), "pass folders that exist")
    })
}

fn cmd_check(registry: &Registry, script: &str, json: bool, allow: &[PathBuf]) -> u8 {
    let s = match load_script(script) {
        Ok(s) => s,
        Err((m, h)) => return usage_error(json, &m, &h),
    };
    let sandbox = match make_sandbox(&s.dir, allow, json) {
        Ok(sb) => sb,
        Err(code) => return code,
    };
    let prepared = prepare(&s.file, registry, &sandbox);
    if json {
        let diags: Vec<_> = prepared.diags.iter().map(|d| d.to_json()).collect();
        println!("{}", pretty(&json!({"ok": prepared.diags.is_empty(), "diagnostics": diags})));
    } else if prepared.diags.is_empty() {
        println!("ok: {} has no problems", s.file.name);
    } else {
        print_diags(&prepared.diags, false);
    }
    if prepared.diags.is_empty() {
        EXIT_OK
    } else {
        EXIT_SCRIPT
    }
}

/// Executes a prepared script; returns the outcome and the run's files.
fn execute_script(
    registry: &Registry,
    s: &Script,
    sandbox: &Sandbox,
    seed_override: Option<u64>,
) -> Result<(Outcome, RunFiles), Vec<Diag>> {
    let prepared = prepare(&s.file, registry, sandbox);
    let program = match (&prepared.program, prepared.diags.is_empty()) {
        (Some(p), true) => p,
        _ => return Err(prepared.diags),
    };
    let seed = seed_override.or_else(|| script_seed(program)).unwrap_or(0);
    let mut out = execute(&s.file, program, registry, sandbox, &prepared.modules, seed);
    out.inputs.extend(prepared.inputs.clone());
    let mut artifacts = std::mem::take(&mut out.artifacts);
    let results = results_json(&out, &s.file, &mut artifacts);
    let mut extra = BTreeMap::new();
    if let Some(rt) = assay_stdlib::onnx::runtime::loaded() {
        extra.insert(
            "onnxruntime".to_string(),
            json!({"version": rt.runtime.version, "threads": rt.threads, "library": rt.runtime.library.display().to_string()}),
        );
    }
    let info = ManifestInfo {
        script_name: &s.file.name,
        script_text: &s.file.text,
        script_dir: &s.dir,
        allowed_roots: sandbox.roots(),
        extra,
    };
    let files = RunFiles {
        script: s.file.text.clone(),
        results,
        trace: trace_jsonl(&out),
        manifest: manifest_json(&out, &info),
        report: report_html(&s.file.name, &out),
        artifacts,
    };
    Ok((out, files))
}

fn show_text(v: &Value) -> String {
    match v {
        Value::List(items) if items.len() > 1 && items.iter().all(|x| matches!(x, Value::Record(_))) => {
            items.iter().map(|x| x.to_text()).collect::<Vec<_>>().join("\n")
        }
        other => other.to_text(),
    }
}

fn cmd_run(registry: &Registry, script: &str, json: bool, allow: &[PathBuf], seed: Option<u64>, runs_dir: &Path) -> u8 {
    let s = match load_script(script) {
        Ok(s) => s,
        Err((m, h)) => return usage_error(json, &m, &h),
    };
    let sandbox = match make_sandbox(&s.dir, allow, json) {
        Ok(sb) => sb,
        Err(code) => return code,
    };
    let (out, files) = match execute_script(registry, &s, &sandbox, seed) {
        Ok(x) => x,
        Err(diags) => {
            if json {
                let d: Vec<_> = diags.iter().map(|d| d.to_json()).collect();
                println!("{}", pretty(&json!({"status": "check-failed", "diagnostics": d})));
            } else {
                print_diags(&diags, false);
            }
            return EXIT_SCRIPT;
        }
    };
    let status = Status::of(&out);
    let run_dir = match write_run(runs_dir, &s.stem, &files) {
        Ok(d) => d,
        Err(e) => {
            return usage_error(
                json,
                &format!("cannot write the run record under {}: {e}", runs_dir.display()),
                "pass a writable --runs-dir",
            );
        }
    };
    if json {
        let results: serde_json::Value = serde_json::from_str(&files.results).unwrap_or(serde_json::Value::Null);
        let shows: Vec<_> = out
            .shows
            .iter()
            .map(|sh| json!({"title": sh.title, "line": sh.line, "text": sh.values.iter().map(show_text).collect::<Vec<_>>().join("\n")}))
            .collect();
        let diags: Vec<_> = out.error.iter().map(|d| d.to_json()).collect();
        println!(
            "{}",
            pretty(&json!({
                "status": status.as_str(),
                "run_dir": run_dir.display().to_string(),
                "results": results,
                "shows": shows,
                "diagnostics": diags,
            }))
        );
    } else {
        for sh in &out.shows {
            match &sh.title {
                Some(t) => println!("── {t} (line {}) ──", sh.line),
                None => println!("── line {} ──", sh.line),
            }
            for v in &sh.values {
                println!("{}", show_text(v));
            }
        }
        if let Some(e) = &out.error {
            print_diags(std::slice::from_ref(e), false);
        }
        let failed: Vec<_> = out.asserts.iter().filter(|a| !a.passed).collect();
        for a in &failed {
            let msg = a.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            println!("assert FAILED (line {}): {}{msg}", a.line, a.expr);
        }
        println!(
            "{}: {} records, {}/{} asserts passed, {} tool calls → {}",
            status.as_str(),
            out.records.len(),
            out.asserts.len() - failed.len(),
            out.asserts.len(),
            out.trace.len(),
            run_dir.display()
        );
    }
    match status {
        Status::Ok => EXIT_OK,
        Status::AssertFailed => EXIT_ASSERT,
        Status::Error => EXIT_SCRIPT,
    }
}

fn cmd_diff(a: &Path, b: &Path, json: bool) -> u8 {
    let (ra, rb) = match (read_run(a), read_run(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => {
            return usage_error(json, &e, "pass two run folders, e.g. runs/exp/0001 runs/exp/0002")
        }
    };
    let changes = diff_results(&ra.results, &rb.results);
    if json {
        println!(
            "{}",
            pretty(
                &json!({"same": changes.is_empty(), "changes": changes.iter().map(|c| c.to_json()).collect::<Vec<_>>()})
            )
        );
    } else if changes.is_empty() {
        println!("no differences in records or asserts");
    } else {
        for c in &changes {
            println!("{}", c.to_text());
        }
        println!("{} difference(s)", changes.len());
    }
    EXIT_OK
}

fn cmd_verify(registry: &Registry, run: &Path, json: bool) -> u8 {
    let rd = match read_run(run) {
        Ok(r) => r,
        Err(e) => return usage_error(json, &e, "pass a finished run folder, e.g. runs/exp/0001"),
    };
    let m = &rd.manifest;
    let name = m["script"]["name"].as_str().unwrap_or("script.assay").to_string();
    let dir = PathBuf::from(m["script"]["dir"].as_str().unwrap_or("."));
    let seed = m["seed"].as_u64();
    let roots: Vec<PathBuf> = m["allowed_roots"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(PathBuf::from)).collect())
        .unwrap_or_default();
    let s = Script { file: SourceFile::new(name, rd.script.clone()), dir: dir.clone(), stem: String::new() };
    let sandbox = match make_sandbox(&dir, &roots, json) {
        Ok(sb) => sb,
        Err(code) => return code,
    };
    // Inputs that changed since the run explain a mismatch.
    let mut changed_inputs = Vec::new();
    if let Some(inputs) = m["inputs"].as_object() {
        for (path, digest) in inputs {
            let now = std::fs::read(path).map(|b| {
                use sha2::Digest;
                hex::encode(sha2::Sha256::digest(&b))
            });
            match now {
                Ok(d) if Some(d.as_str()) == digest.as_str() => {}
                Ok(_) => changed_inputs.push(format!("{path} changed")),
                Err(_) => changed_inputs.push(format!("{path} is missing")),
            }
        }
    }
    let (_, files) = match execute_script(registry, &s, &sandbox, seed) {
        Ok(x) => x,
        Err(diags) => {
            print_diags(&diags, json);
            if json {
                let d: Vec<_> = diags.iter().map(|d| d.to_json()).collect();
                println!("{}", pretty(&json!({"verified": false, "diagnostics": d})));
            }
            return EXIT_ASSERT;
        }
    };
    let same = files.results == rd.results_text;
    let new_results: serde_json::Value = serde_json::from_str(&files.results).unwrap_or(serde_json::Value::Null);
    let changes = diff_results(&rd.results, &new_results);
    if json {
        println!(
            "{}",
            pretty(&json!({
                "verified": same,
                "run": run.display().to_string(),
                "changes": changes.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
                "changed_inputs": changed_inputs,
            }))
        );
    } else if same {
        println!("verified: re-running {} gives byte-identical results.json", run.display());
    } else {
        println!("NOT verified: results.json differs from {}", run.display());
        for c in &changes {
            println!("  {}", c.to_text());
        }
        if changes.is_empty() {
            println!("  (the JSON values are equal; the bytes differ)");
        }
        for c in &changed_inputs {
            println!("  input {c}");
        }
    }
    if same {
        EXIT_OK
    } else {
        EXIT_ASSERT
    }
}

fn cmd_setup(json: bool) -> u8 {
    match assay_stdlib::onnx::runtime::runtime() {
        Ok(loaded) => {
            let rt = &loaded.runtime;
            if json {
                println!(
                    "{}",
                    pretty(
                        &json!({"onnxruntime": {"version": rt.version, "library": rt.library.display().to_string(), "how": rt.how}})
                    )
                );
            } else {
                println!("onnxruntime {}: {}", rt.version, rt.how);
            }
            EXIT_OK
        }
        Err(e) => {
            if json {
                println!("{}", pretty(&json!({"error": e})));
            } else {
                eprintln!("error: {e}");
            }
            EXIT_SCRIPT
        }
    }
}
