//! Benchmarks with ground truth (FIND's functions, MAIA-style synthetic
//! neurons), run by the agent or by a baseline through the same loop
//! (`agent::investigate_with`) and scored by the same code.
//!
//! A benchmark folder holds the generated set and, per investigator, one
//! investigation folder per item:
//!
//! ```text
//! OUT/set.json                       the items and their ground truth (digested)
//! OUT/boxes/ID.rhai                  the black boxes (never in an investigator's folders)
//! OUT/INVESTIGATOR/items/ID/0001/    an investigation folder (replays)
//! OUT/INVESTIGATOR/results.json      per-item scores and the table (no times: it reproduces)
//! OUT/INVESTIGATOR/timing.json       wall time per item
//! OUT/report.html                    every investigator's table, with plots
//! ```
//!
//! A run is resumable: items whose folder is finished are kept; a killed
//! item left only an unfinished folder, which is removed and redone.

pub(crate) mod expr;
pub mod judge;
pub(crate) mod numeric;
pub(crate) mod report;
pub(crate) mod strings;

use judge::{description_trials, Judge};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use assay_interpreter::{canonical, read_regular};
use serde_json::{json, Value as Json};
use sha2::Digest;

use crate::agent::{investigate_with, Baseline, FnSpec, Investigator, Limits, Llm, Task};

/// The benchmark suites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// FIND's numeric functions (plain, noisy, corrupted, network-approximated).
    Numeric,
    /// FIND's string functions.
    Strings,
    /// Synthetic neurons at MAIA's scale (91; `--n` takes the first n).
    Neurons,
}

impl Suite {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Suite::Numeric => "numeric",
            Suite::Strings => "strings",
            Suite::Neurons => "neurons",
        }
    }

    /// The baselines that need no model, by name.
    pub fn baselines(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Suite::Numeric => &[
                ("floor", include_str!("baselines/numeric_floor.assay")),
                ("fit", include_str!("baselines/numeric_fit.assay")),
            ],
            Suite::Strings => &[
                ("floor", include_str!("baselines/strings_floor.assay")),
                ("fit", include_str!("baselines/strings_fit.assay")),
            ],
            Suite::Neurons => &[
                ("floor", include_str!("baselines/neurons_floor.assay")),
                ("exemplars", include_str!("baselines/neurons_exemplars.assay")),
            ],
        }
    }
}

/// One item of a set.
pub(crate) enum Item {
    Numeric(numeric::Function),
    Strings(strings::Function),
    /// A synthetic neuron: id, name, family, kind, ground truth.
    Neuron {
        id: String,
        name: String,
        family: &'static str,
        kind: &'static str,
        description: String,
    },
}

impl Item {
    pub(crate) fn id(&self) -> &str {
        match self {
            Item::Numeric(f) => &f.id,
            Item::Strings(f) => &f.id,
            Item::Neuron { id, .. } => id,
        }
    }

    /// The categories the table groups this item under (besides "all").
    pub(crate) fn tags(&self) -> Vec<String> {
        match self {
            Item::Numeric(f) => {
                let shape = if f.family.contains(':') { "compound" } else { "simple" };
                vec![f.variant.name().to_string(), shape.to_string()]
            }
            Item::Strings(f) => vec![if f.family.contains(';') { "composed" } else { "single" }.to_string()],
            Item::Neuron { family, kind, .. } => vec![family.to_string(), kind.to_string()],
        }
    }

    /// The ground truth, as set.json records it.
    pub(crate) fn truth(&self, seed: u64) -> Json {
        match self {
            Item::Numeric(f) => {
                let mut j = json!({
                "id": f.id,
                "family": f.family,
                "variant": f.variant.name(),
                "description": f.description,
                "code": f.truth_code(),
                "domain": f.interval().map(|(lo, hi)| json!([assay_interpreter::num_json(lo), assay_interpreter::num_json(hi)])),
                "box_sha256": hex::encode(sha2::Sha256::digest(f.box_source(seed).as_bytes())),
                "net_sha256": f.net.as_ref().map(|b| hex::encode(sha2::Sha256::digest(b))),
                });
                // How closely a network item's network follows its function.
                if let Some(e) = f.net_nmse {
                    j["net_nmse"] = json!(e);
                }
                j
            }
            Item::Strings(f) => json!({
                "id": f.id,
                "family": f.family,
                "description": f.description,
                "code": f.truth_code(),
                "tests": f.tests,
                "box_sha256": hex::encode(sha2::Sha256::digest(f.box_source().as_bytes())),
            }),
            Item::Neuron { id, name, family, kind, description } => json!({
                "id": id, "neuron": name, "family": family, "kind": kind, "description": description,
            }),
        }
    }

    /// Input-output pairs of the item's function on `inputs` (numbers for a
    /// numeric item, the test words for a string one), as the description
    /// test shows them; None for a neuron. Evaluated here, in-process: the
    /// functions are Assay's own, not a script's.
    fn pairs(&self, inputs: &[Json]) -> Option<String> {
        let f = |v: &Json| -> String {
            match v {
                Json::Number(n) => {
                    let x = n.as_f64().unwrap_or(0.0);
                    if x.fract() == 0.0 && x.abs() < 1e9 {
                        format!("{x}")
                    } else {
                        format!("{x:.4}").trim_end_matches('0').trim_end_matches('.').to_string()
                    }
                }
                other => other.to_string(),
            }
        };
        let out: Vec<String> = match self {
            Item::Numeric(func) => inputs
                .iter()
                .map(|x| {
                    let x = x.as_f64().unwrap_or(0.0);
                    format!("f({}) = {}", f(&json!(x)), f(&assay_interpreter::num_json(func.expr.eval(x))))
                })
                .collect(),
            Item::Strings(func) => {
                let m = assay_interpreter::RhaiModule::load_opaque("box", &func.box_source(), String::new()).ok()?;
                inputs
                    .iter()
                    .map(|w| {
                        let y = m
                            .call("f", vec![assay_interpreter::Value::str(w.as_str().unwrap_or(""))])
                            .map(|v| match v {
                                assay_interpreter::Value::Str(s) => json!(s.to_string()),
                                assay_interpreter::Value::Num(n) => assay_interpreter::num_json(n),
                                assay_interpreter::Value::Bool(b) => json!(b),
                                other => json!(other.to_text()),
                            })
                            .unwrap_or(Json::Null);
                        format!("f({}) = {}", f(w), f(&y))
                    })
                    .collect()
            }
            Item::Neuron { .. } => return None,
        };
        Some(out.join(", "))
    }

    /// The ground truth in the answer format.
    fn truth_answer(&self) -> Result<String, String> {
        Ok(match self {
            Item::Numeric(f) => {
                let domain = match f.interval() {
                    Some((lo, hi)) => format!("[{lo}, {hi}]"),
                    None => "none".into(),
                };
                format!(
                    "[DESCRIPTION]: {}\n[DOMAIN]: {domain}\n[CODE]:\n```assay\n{}```\n",
                    f.description,
                    f.truth_code()
                )
            }
            Item::Strings(f) => format!("[DESCRIPTION]: {}\n[CODE]:\n```assay\n{}```\n", f.description, f.truth_code()),
            // A neuron's truth in stimuli: drawings that show its concept
            // and drawings that do not, written from its definition.
            Item::Neuron { name, description, .. } => {
                let (pos, neg) = assay_stdlib::vision::bench_truth::truth_stimuli(name)?;
                format!("[DESCRIPTION]: {description}\n[LABEL]: {description}\n[POSITIVE]: {pos}\n[NEGATIVE]: {neg}\n")
            }
        })
    }

    /// The task, its box written under `boxes/` if it is not there yet.
    fn task(&self, out: &Path, seed: u64) -> std::io::Result<Task> {
        if let Item::Neuron { name, .. } = self {
            return Ok(Task::Unit { synthetic: name.clone() });
        }
        let boxes = out.join("boxes");
        std::fs::create_dir_all(&boxes)?;
        let path = boxes.join(format!("{}.rhai", self.id()));
        let (source, spec) = match self {
            Item::Numeric(f) => {
                let net = f.net.clone();
                if let Some(bytes) = &net {
                    let onnx = path.with_extension("onnx");
                    if read_regular(&onnx, 64 << 20).ok().as_deref() != Some(bytes.as_slice()) {
                        write_atomic(&onnx, bytes)?;
                    }
                }
                // Every item is scored against its clean function, as FIND
                // scores (its mse_indicator.py reads function_code.py, the
                // clean function, for noisy, corrupted and network items
                // alike); a network item's network follows its function to
                // NMSE < 0.01 on the scoring points (`numeric::NET_MAX_NMSE`).
                let truth = Some(f.truth_code());
                (f.box_source(seed), FnSpec { truth, interval: f.interval(), domain_scored: true, strings: None, net })
            }
            Item::Strings(f) => (f.box_source(), FnSpec { strings: Some(f.tests.clone()), ..Default::default() }),
            Item::Neuron { .. } => unreachable!("handled above"),
        };
        if read_regular(&path, 1 << 20).ok().as_deref() != Some(source.as_bytes()) {
            write_atomic(&path, source.as_bytes())?;
        }
        Ok(Task::Function { path, source, name: "f".into(), spec })
    }
}

/// The set of `suite` with `seed`: `n` items, each from its own stream.
pub(crate) fn set(suite: Suite, seed: u64, n: usize) -> Vec<Item> {
    if suite == Suite::Neurons {
        // A fixed set: the seed only seeds the investigators' scripts.
        return assay_stdlib::vision::synthetic::benchmark_neurons()
            .into_iter()
            .take(n)
            .enumerate()
            .map(|(i, (name, family, kind, description))| Item::Neuron {
                id: format!("u{i:02}"),
                name,
                family,
                kind,
                description,
            })
            .collect();
    }
    (0..n as u64)
        .map(|i| match suite {
            Suite::Numeric => Item::Numeric(numeric::function(seed, i)),
            Suite::Strings => Item::Strings(strings::function(seed, i)),
            Suite::Neurons => unreachable!("handled above"),
        })
        .collect()
}

/// Writes a file so that a reader sees the old or the new bytes, never a part.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Who runs the benchmark.
pub enum Runner {
    Baseline(&'static str),
    /// Answers every item with its ground truth, without a step: the
    /// scorer's ceiling, which checks the scorer and the set together.
    Truth,
    Agent,
}

/// The ground truth as an answer.
struct Truth(String);

impl Investigator for Truth {
    fn name(&self) -> String {
        "truth".into()
    }
    fn endpoint(&self) -> Option<String> {
        None
    }
    fn reply(&mut self, _: &[Json], _: Option<&Json>, _: Option<&Path>) -> Result<assay_stdlib::llm::Reply, String> {
        Ok(assay_stdlib::llm::Reply {
            message: json!({"role": "assistant", "content": self.0}),
            text: self.0.clone(),
            usage: Json::Null,
            attempts: 1,
            tool_calls: Vec::new(),
        })
    }
}

pub struct Options {
    pub suite: Suite,
    pub seed: u64,
    pub n: usize,
    pub out: PathBuf,
    pub runner: Runner,
    pub jobs: usize,
    pub limits: Limits,
    pub json: bool,
    /// Run only this shard's block of items (no table: `merge_shards` writes it).
    pub shard: Option<assay_interpreter::shard::Share>,
    /// Write the table only if every item is finished, naming the shards whose items are not.
    pub merge_shards: Option<usize>,
}

/// The finished investigation folder of an item (`items/ID/KIND/NNNN`,
/// holding its manifest), if there is one.
fn finished(dir: &Path) -> Option<PathBuf> {
    let list = |d: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> =
            std::fs::read_dir(d).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
        v.sort();
        v
    };
    list(dir).into_iter().filter(|k| k.is_dir()).flat_map(|k| list(&k)).find(|d| {
        let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        name.len() == 4 && name.chars().all(|c| c.is_ascii_digit()) && d.join("manifest.json").is_file()
    })
}

/// Runs (or resumes) a benchmark; returns the exit code.
pub fn run(opts: Options) -> u8 {
    match run_inner(&opts) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            crate::out::EXIT_USAGE
        }
    }
}

fn run_inner(opts: &Options) -> Result<u8, String> {
    let name = investigator_name(opts)?;
    let items = set(opts.suite, opts.seed, opts.n);
    if opts.suite == Suite::Neurons {
        // Trained once, before the items (each would otherwise wait for it).
        assay_stdlib::vision::bench_concepts::concept_model_cached()
            .map_err(|e| format!("cannot build the benchmark's concept neurons: {e}"))?;
    }
    let set_sha = pin_set(opts, &items)?;
    let inv_dir = opts.out.join(assay_interpreter::run_stem(&name));
    let started = Instant::now();
    let timing: BTreeMap<String, f64> = read_regular(&inv_dir.join("timing.json"), 1 << 26)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let block = opts.shard.map(|s| s.range(items.len())).unwrap_or(0..items.len());
    let unfinished = |range: std::ops::Range<usize>| -> Vec<&Item> {
        items[range].iter().filter(|it| finished(&inv_dir.join("items").join(it.id())).is_none()).collect()
    };
    let todo = unfinished(block.clone());
    if let Some(count) = opts.merge_shards {
        if !todo.is_empty() {
            return Err(unmerged(&items, &todo, count));
        }
    }
    let kept = items.len() - todo.len();
    if kept > 0 && !opts.json {
        eprintln!("resuming: {kept} of {} items are finished and kept", items.len());
    }
    let (failures, mut timing) = run_items(opts, &todo, &inv_dir, timing)?;
    if let Some(share) = opts.shard {
        // Shards write their own timing file (they may run at once); the merge folds them in.
        let name = format!("timing.shard-{}-of-{}.json", share.index, share.count);
        let _ = write_atomic(&inv_dir.join(name), canonical(&json!(timing)).as_bytes());
        let left = unfinished(block.clone()).len();
        if !opts.json {
            crate::out::write_stdout(&format!(
                "shard {}/{}: items {}..{} ({} run now, {} kept, {} unfinished) → {}\n",
                share.index,
                share.count,
                block.start,
                block.end,
                todo.len(),
                block.len() - todo.len(),
                left,
                inv_dir.display()
            ));
        } else {
            crate::out::write_stdout(&format!(
                "{}\n",
                canonical(
                    &json!({"folder": inv_dir.display().to_string(), "shard": {"index": share.index, "count": share.count}, "items": [block.start, block.end], "unfinished": left})
                )
            ));
        }
        return Ok(if failures.is_empty() && left == 0 { crate::out::EXIT_OK } else { crate::out::EXIT_SCRIPT });
    }
    fold_shard_timings(&inv_dir, &mut timing);
    let _ = write_atomic(&inv_dir.join("timing.json"), canonical(&json!(timing)).as_bytes());
    let rows = score_items(opts, &items, &inv_dir)?;
    let table = report::table(opts.suite, &rows);
    let results = json!({
        "suite": opts.suite.name(),
        "seed": opts.seed,
        "set_sha256": set_sha,
        "investigator": name,
        "items": rows,
        "table": table,
        "complete": rows.len() == items.len(),
    });
    write_atomic(&inv_dir.join("results.json"), canonical(&results).as_bytes())
        .map_err(|e| format!("cannot write results.json: {e}"))?;
    let item_seconds: f64 = timing.values().sum();
    report::write_report(&opts.out).map_err(|e| format!("cannot write report.html: {e}"))?;
    if opts.json {
        crate::out::write_stdout(&format!(
            "{}\n",
            canonical(
                &json!({"folder": inv_dir.display().to_string(), "table": table, "items": rows, "complete": rows.len() == items.len(), "seconds": started.elapsed().as_secs_f64(), "item_seconds": item_seconds})
            )
        ));
    } else {
        crate::out::write_stdout(&report::table_text(&name, &table));
        crate::out::write_stdout(&report::items_text(&rows));
        crate::out::write_stdout(&format!(
            "{} of {} items; this run {:.1} s; {:.1} s of item time in all → {}\n",
            rows.len(),
            items.len(),
            started.elapsed().as_secs_f64(),
            item_seconds,
            inv_dir.display()
        ));
    }
    Ok(if failures.is_empty() && rows.len() == items.len() { crate::out::EXIT_OK } else { crate::out::EXIT_SCRIPT })
}

/// The investigator's name, which names its folder: `baseline-NAME`,
/// `truth`, or `agent-MODEL`.
fn investigator_name(opts: &Options) -> Result<String, String> {
    Ok(match opts.runner {
        Runner::Baseline(b) => format!("baseline-{b}"),
        Runner::Truth => "truth".to_string(),
        Runner::Agent => format!("agent-{}", assay_stdlib::llm::Endpoint::for_agent()?.model),
    })
}

/// Writes the set's `set.json` into `--out`, or checks that the one there
/// is this set (a folder holds one set); the set's sha256.
fn pin_set(opts: &Options, items: &[Item]) -> Result<String, String> {
    let set_json = json!({
        "suite": opts.suite.name(),
        "seed": opts.seed,
        "assay_version": assay_interpreter::ASSAY_VERSION,
        "items": items.iter().map(|i| i.truth(opts.seed)).collect::<Vec<_>>(),
    });
    let set_text = canonical(&set_json);
    std::fs::create_dir_all(&opts.out).map_err(|e| format!("cannot make {}: {e}", opts.out.display()))?;
    let set_path = opts.out.join("set.json");
    match read_regular(&set_path, 1 << 30) {
        Ok(old) if old != set_text.as_bytes() => {
            return Err(format!(
                "{} holds another set (a different suite, seed, size or Assay version); give another --out",
                opts.out.display()
            ))
        }
        Ok(_) => {}
        Err(_) => write_atomic(&set_path, set_text.as_bytes()).map_err(|e| format!("cannot write set.json: {e}"))?,
    }
    Ok(hex::encode(sha2::Sha256::digest(set_text.as_bytes())))
}

/// Why a merge of `count` shards cannot be made yet: the unfinished items
/// (`todo`), by the shard that holds them.
fn unmerged(items: &[Item], todo: &[&Item], count: usize) -> String {
    let mut by_shard: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (k, it) in items.iter().enumerate() {
        if todo.iter().any(|t| t.id() == it.id()) {
            let shard = (0..count).find(|i| {
                assay_interpreter::shard::Share::new(*i, count).is_ok_and(|s| s.range(items.len()).contains(&k))
            });
            by_shard.entry(shard.unwrap_or(0)).or_default().push(it.id());
        }
    }
    let lines: Vec<String> = by_shard
        .iter()
        .map(|(i, ids)| {
            format!(
                "shard {i} of {count}: {} item(s) unfinished ({}{})",
                ids.len(),
                ids[..ids.len().min(3)].join(", "),
                if ids.len() > 3 { ", ..." } else { "" }
            )
        })
        .collect();
    format!(
        "{} items are not finished, so there is nothing to merge yet: {}; rerun those shards (the same command with --shard I/{count}), then merge again",
        todo.len(),
        lines.join("; ")
    )
}

/// The investigator of one item.
fn investigator_for(opts: &Options, item: &Item) -> Result<Box<dyn Investigator>, String> {
    Ok(match opts.runner {
        Runner::Baseline(b) => {
            let script = opts.suite.baselines().iter().find(|(n, _)| *n == b).map(|(_, s)| *s);
            Box::new(Baseline::new(b, script.unwrap_or("")))
        }
        Runner::Truth => Box::new(Truth(item.truth_answer()?)),
        Runner::Agent => {
            Box::new(Llm { endpoint: assay_stdlib::llm::Endpoint::for_agent()?, retry: opts.limits.retry.clone() })
        }
    })
}

/// Investigates `todo`, `--jobs` at a time: the failures (an item whose
/// investigation could not run or be kept) and the seconds each finished
/// item took, added to `timing`. A stop signal ends it, keeping what
/// finished.
fn run_items(
    opts: &Options,
    todo: &[&Item],
    inv_dir: &Path,
    timing: BTreeMap<String, f64>,
) -> Result<(Vec<String>, BTreeMap<String, f64>), String> {
    let timing = Mutex::new(timing);
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1).min(todo.len().max(1)) {
            s.spawn(|| loop {
                if crate::supervise::interrupted().is_some() {
                    break;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = todo.get(k) else { break };
                let t = Instant::now();
                let result = item.task(&opts.out, opts.seed).map_err(|e| e.to_string()).and_then(|task| {
                    let mut inv = investigator_for(opts, item)?;
                    investigate_with(task, &opts.limits, &inv_dir.join("items").join(item.id()), inv.as_mut())
                        .map_err(|(_, m)| m)
                });
                match result {
                    Ok(_) => {
                        if let Ok(mut t_) = timing.lock() {
                            t_.insert(item.id().to_string(), t.elapsed().as_secs_f64());
                        }
                    }
                    Err(e) => {
                        if let Ok(mut f) = failures.lock() {
                            f.push(format!("{}: {e}", item.id()));
                        }
                    }
                }
                let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                if !opts.json && (d % 25 == 0 || d == todo.len()) {
                    eprintln!("{d}/{} items", todo.len());
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_default();
    if let Some(sig) = crate::supervise::interrupted() {
        return Err(format!(
            "stopped by signal {sig}: the {} finished items are kept; run the same command again to go on",
            done.load(Ordering::SeqCst).saturating_sub(failures.len())
        ));
    }
    for f in &failures {
        eprintln!("error: {f}");
    }
    Ok((failures, timing.into_inner().unwrap_or_default()))
}

/// Adds the timing files the shards wrote (`timing.shard-I-of-N.json`).
fn fold_shard_timings(inv_dir: &Path, timing: &mut BTreeMap<String, f64>) {
    let Ok(rd) = std::fs::read_dir(inv_dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("timing.shard-") && name.ends_with(".json") {
            if let Some(t) = read_regular(&e.path(), 1 << 26)
                .ok()
                .and_then(|b| serde_json::from_slice::<BTreeMap<String, f64>>(&b).ok())
            {
                timing.extend(t);
            }
        }
    }
}

/// A row per finished item: its status and scores, with the judge's
/// verdicts where a judge model is configured.
fn score_items(opts: &Options, items: &[Item], inv_dir: &Path) -> Result<Vec<Json>, String> {
    let judge = Judge::from_env()?;
    let mut rows = Vec::new();
    for it in items {
        let Some(dir) = finished(&inv_dir.join("items").join(it.id())) else { continue };
        let answer: Json = read_regular(&dir.join("answer.json"), 1 << 26)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Json::Null);
        let judged = match (&judge, it) {
            (Some(j), Item::Neuron { description, .. }) => j.verdict(
                &inv_dir.join("items").join(it.id()),
                answer["fields"]["LABEL"].as_str().unwrap_or(""),
                description,
            ),
            _ => None,
        };
        let description_test = match (&judge, it) {
            (Some(j), Item::Numeric(_) | Item::Strings(_)) => {
                let trials = description_trials(items, it, opts.seed);
                j.description_test(
                    &inv_dir.join("items").join(it.id()),
                    answer["fields"]["DESCRIPTION"].as_str().unwrap_or(""),
                    &trials,
                )
            }
            _ => None,
        };
        rows.push(json!({
            "label_judged": judged,
            "description_test": description_test,
            "id": it.id(),
            "tags": it.tags(),
            "status": answer["status"],
            "scores": answer["scores"],
            "folder": dir.strip_prefix(&opts.out).unwrap_or(&dir).display().to_string(),
        }));
    }
    Ok(rows)
}

/// Which benchmark set and investigator: `assay bench` and `assay slurm bench`.
#[derive(clap::Args, Clone)]
pub struct BenchSet {
    #[arg(value_enum)]
    pub suite: Suite,
    /// A baseline that needs no model: `floor`, `fit` (numeric, strings)
    /// or `exemplars` (neurons); or `truth`, the ground truth as the
    /// answer (the scorer's ceiling). Without it, the agent's configured
    /// model investigates every item (under SLURM its ASSAY_AGENT_*
    /// variables reach the jobs through sbatch's default --export=ALL).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Items in the set (FIND has 1000 of each).
    #[arg(long, default_value_t = 1000)]
    pub n: usize,
    /// The set's seed: the same seed gives the same set, byte for byte.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The benchmark folder (default: benchmarks/SUITE-seedSEED-nN).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

impl BenchSet {
    pub fn out_dir(&self) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("benchmarks/{}-seed{}-n{}", self.suite.name(), self.seed, self.n)))
    }
}
