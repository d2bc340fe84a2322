//! A real language model's replies (tests/agent-transcripts/, verbatim: see
//! its README) played back through the scripted endpoint. No hosted model
//! can be reached here, so the loopback test double stands in for it; the
//! replies themselves are real output, mistakes included. Everything else
//! is real: the tasks, the sandboxed steps, the answer checks and scoring.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::agent::agent;
use crate::scripted::{say, scripted, Turn};
use crate::support::{temp_with, Test};

fn transcripts() -> PathBuf {
    crate::support::repo_root().join("tests/agent-transcripts")
}

/// The replies of one investigation, in order.
fn replies(dir: &Path) -> Vec<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    names.sort();
    names.iter().map(|p| std::fs::read_to_string(p).expect("reply")).collect()
}

fn turns(texts: &[String]) -> Vec<Turn> {
    texts.iter().map(|t| say(t)).collect()
}

/// The five unit investigations' final answers (each wraps its
/// expressions in backticks, as the guide of the time showed them), given
/// to the same tasks: every one is checked, accepted and scored.
#[test]
fn the_five_real_unit_answers_are_all_scored() {
    let work = temp_with(&[]);
    let tasks: [(&str, &[&str]); 5] = [
        ("u1-synthetic-vertical", &["--synthetic", "vertical"]),
        // Recorded on the benchmark's first bird-or-aircraft neuron (ImageNet
        // probabilities, which on drawings fired on a goose's orange bill);
        // the neuron of that name is now a detector trained on drawings.
        ("u2-synthetic-bird_or_aircraft", &["--synthetic", "birds_or_aircraft"]),
        (
            "u3-efficientnet-b12-c200",
            &["--model", "efficientnet-lite0", "--unit", "\"/_blocks.12/Relu6_output_0\", channel: 200"],
        ),
        (
            "u4-smollm2-l6-n321",
            &["--model", "smollm2-135m", "--unit", "\"/model/layers.6/mlp/Mul_output_0\", neuron: 321"],
        ),
        ("u5-synthetic-emoji_moon", &["--synthetic", "emoji_moon"]),
    ];
    let mut scored = 0;
    for (name, unit) in tasks {
        let all = replies(&transcripts().join("units").join(name));
        let last = all.last().expect("a final answer").clone();
        let model = scripted(vec![say(&last)]);
        let mut args = vec!["unit"];
        args.extend_from_slice(unit);
        args.extend_from_slice(&["--vision", "--steps", "10"]);
        let out = agent(work.path(), &model, &args);
        assert_eq!(out.code, 0, "{name}: {}{}", out.stdout, out.stderr);
        let answer = &out.json()["answer"];
        assert_eq!(answer["status"], "answered", "{name}: {answer}");
        let auc = answer["scores"]["score"].as_f64().unwrap_or_else(|| panic!("{name}: no AUC: {answer}"));
        eprintln!("{name}: AUC {auc}");
        // The descriptions were right: their stimuli separate the unit's
        // responses (u2's unit has changed since: scored, not judged).
        if !name.starts_with("u2-") {
            assert!(auc >= 0.9, "{name}: AUC {auc}: {answer}");
        }
        scored += 1;
    }
    assert_eq!(scored, 5);
}

/// A whole investigation played back, reply by reply: the synthetic
/// vertical-edge unit (five replies, the last the answer).
#[test]
fn a_whole_real_unit_investigation_plays_back_and_is_scored() {
    let work = temp_with(&[]);
    let all = replies(&transcripts().join("units/u1-synthetic-vertical"));
    let model = scripted(turns(&all));
    let out = agent(
        work.path(),
        &model,
        &["unit", "--synthetic", "vertical", "--vision", "--steps", "10", "--timeout", "120s"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["answer"]["status"], "answered", "{j}");
    assert!(j["answer"]["scores"]["score"].as_f64().is_some_and(|s| s >= 0.9), "{j}");
    let folder = work.path().join(j["folder"].as_str().expect("folder"));
    let manifest: Json = serde_json::from_str(&std::fs::read_to_string(folder.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["steps"].as_array().map(Vec::len), Some(all.len() - 1), "{manifest}");
}

/// The four numeric benchmark items, every reply played back in order
/// (one item at a time): all four functions solved and all four domains
/// scored correct: `none (... [−128, 128])` is none, and `[−66.8, 128]`
/// keeps its U+2212 minus sign.
#[test]
fn the_four_real_numeric_items_score_every_domain_correct() {
    let work = temp_with(&[]);
    let mut all = Vec::new();
    for item in ["n0000", "n0001", "n0002", "n0003"] {
        all.extend(replies(&transcripts().join("bench-numeric-seed77-n4").join(item)));
    }
    let model = scripted(turns(&all));
    let out = Test::new(work.path())
        .args(["bench", "numeric", "--n", "4", "--seed", "77", "--steps", "10", "--jobs", "1", "--json"])
        .args(["--retry-wait", "10ms", "--attempts", "1", "--out", "set"])
        .env("ASSAY_AGENT_URL", &model.url)
        .env("ASSAY_AGENT_MODEL", "scripted")
        .env("ASSAY_LLM_URL", "")
        .run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // The items, each with its scores, in what --json prints.
    let items = out.json()["items"].as_array().cloned().expect("items in --json");
    assert_eq!(items.len(), 4);
    for it in &items {
        assert_eq!(it["status"], "answered", "{it}");
        assert_eq!(it["scores"]["solved"], true, "{it}");
        assert_eq!(it["scores"]["domain_correct"], true, "{it}");
    }
    assert_eq!(items[3]["scores"]["domain_iou"].as_f64().map(|x| x > 0.99), Some(true), "{}", items[3]);
}
