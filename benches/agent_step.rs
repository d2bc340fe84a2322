//! The agent harness's own cost per step: an investigation of a black-box
//! function whose scripted model (a loopback test double; no hosted model
//! exists here) replies instantly with N trivial scripts and then an answer,
//! against N plain `assay run`s of the same script. Rounds are interleaved
//! so machine noise hits both alike; medians are compared. The difference
//! per step is the harness: reading the reply, checking, the sandboxed
//! child, formatting the feedback, the transcript and the folder.
//!
//! `cargo bench --bench agent_step`

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

#[path = "../tests/it/scripted.rs"]
mod scripted;

use std::process::Command;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let steps: usize = std::env::var("AGENT_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let rounds: usize = std::env::var("AGENT_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let bin = env!("CARGO_BIN_EXE_assay");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("box.rhai"), "fn f(x) { 2.0 * x }\n").unwrap();
    let script = "record \"y\", box.f(1)\n";
    // The same script as a plain run: the box as a module.
    std::fs::write(dir.path().join("plain.assay"), format!("use \"box.rhai\" as box\n{script}")).unwrap();
    let answer = "[DESCRIPTION]: doubles\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return 2 * x\n}\n```";
    let (mut agent_ms, mut run_ms) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut turns: Vec<scripted::Turn> =
            (0..steps).map(|_| scripted::say(&format!("```assay\n{script}```"))).collect();
        turns.push(scripted::say(answer));
        let model = scripted::scripted(turns);
        let t = Instant::now();
        let out = Command::new(bin)
            .current_dir(dir.path())
            .args(["agent", "function", "box.rhai", "--steps", &(steps + 1).to_string(), "--json"])
            .env("ASSAY_AGENT_URL", &model.url)
            .env("ASSAY_AGENT_MODEL", "scripted")
            .env("ASSAY_LLM_URL", "")
            .output()
            .unwrap();
        // The answer is scored by one more sandboxed run: count it as a step.
        agent_ms.push(t.elapsed().as_secs_f64() * 1e3 / (steps + 1) as f64);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let t = Instant::now();
        for _ in 0..steps {
            let out = Command::new(bin).current_dir(dir.path()).args(["run", "plain.assay"]).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        run_ms.push(t.elapsed().as_secs_f64() * 1e3 / steps as f64);
    }
    let (a, r) = (median(agent_ms), median(run_ms));
    println!("agent step (check + sandboxed run + reply + folder): {a:.1} ms");
    println!("plain `assay run` of the same script:                 {r:.1} ms");
    println!("harness per step beyond a plain run: {:.1} ms ({:.2}x a plain run)", a - r, a / r);
}
