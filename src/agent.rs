//! `assay agent`: a language model investigates by writing Assay scripts.
//! Each reply holds one script; Assay checks it, runs it in the sandboxed
//! child (as `assay run` does), and answers with what it showed, recorded,
//! asserted and failed on, within a size budget. The loop ends on a final
//! answer, which Assay scores. The whole investigation is a folder, written
//! like a run (built unfinished, manifest last, renamed into place): each
//! step's script and full run record, the transcript (no secrets), the
//! answer and its scores, and a report. `assay agent replay` re-runs every
//! step without the model and checks each results.json byte for byte.
//!
//! The model never sees the key, never chooses the endpoint, and never gets
//! a black box's source: the box is bound into each script by the harness,
//! not read from a file the script could open.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assay_interpreter::{begin_run, canonical, finish_run, html_escape, read_regular};
use assay_stdlib::llm::{Endpoint, Reply, Retry};
use base64::Engine as _;
use serde_json::{json, Value as Json};
use sha2::Digest;

use crate::supervise::{run_child, Budget, End, Job, Report};

/// How a black-box function's answer is scored, beyond the box itself.
#[derive(Clone, Debug, Default)]
pub(crate) struct FnSpec {
    /// Assay code defining `fn f(x)` that the answer is scored against: the
    /// function without its noise or corruption (a benchmark's truth). None:
    /// the box itself.
    pub truth: Option<String>,
    /// The interval where the box is corrupted, for domain scoring
    /// (infinite ends for one-sided intervals). Scored only when `scored`.
    pub interval: Option<(f64, f64)>,
    /// Whether `[DOMAIN]` is scored (benchmarks know the truth).
    pub domain_scored: bool,
    /// A function of strings: the inputs its answer is scored on, by exact
    /// match with the box.
    pub strings: Option<Vec<String>>,
    /// The network behind the box (ONNX bytes): the box's `net(x)`.
    pub net: Option<Vec<u8>>,
}

/// What the agent investigates.
pub(crate) enum Task {
    /// A black-box numeric function (FIND): a rhai file defining `name`,
    /// bound into every script as `box`.
    Function { path: PathBuf, source: String, name: String, spec: FnSpec },
    /// An open question in the person's words, over the folders it may read.
    Question { text: String, roots: Vec<PathBuf> },
    /// A unit bound as `unit`, blinded: a synthetic neuron with known
    /// ground truth (MAIA; the tools that would name it are withheld), or
    /// `unit(model(...), tensor, channel:/neuron:/head:)` of a real model.
    Unit { synthetic: String },
    /// A unit of a real model, given as the arguments of `unit(...)` after
    /// the model: e.g. `"/_blocks.15/Relu6_output_0", channel: 42`.
    ModelUnit { model: String, unit: String },
}

impl Task {
    fn kind(&self) -> &'static str {
        match self {
            Task::Function { .. } => "function",
            Task::Question { .. } => "question",
            Task::Unit { .. } | Task::ModelUnit { .. } => "unit",
        }
    }

    /// The guide this task's model gets: its tools and answer format.
    pub(crate) fn focus(&self) -> crate::docs::Focus {
        use crate::docs::Focus;
        match self {
            Task::Function { .. } => Focus::Function,
            Task::Question { .. } => Focus::Question,
            Task::Unit { .. } => Focus::ImageUnit,
            Task::ModelUnit { unit, .. } if takes_text(unit) => Focus::TextUnit,
            Task::ModelUnit { .. } => Focus::ImageUnit,
        }
    }

    fn bound(&self) -> Vec<(String, String)> {
        match self {
            Task::Function { source, .. } => vec![("box".to_string(), source.clone())],
            Task::Question { .. } | Task::Unit { .. } | Task::ModelUnit { .. } => Vec::new(),
        }
    }

    /// Networks behind bound boxes, as the child takes them.
    fn nets(&self) -> Vec<(String, String)> {
        match self {
            Task::Function { spec: FnSpec { net: Some(bytes), .. }, .. } => {
                vec![("box".to_string(), base64::engine::general_purpose::STANDARD.encode(bytes))]
            }
            _ => Vec::new(),
        }
    }

    /// What the harness runs before each script to bind the unit.
    fn prelude(&self) -> Option<(String, Vec<(String, String)>)> {
        match self {
            Task::Unit { synthetic } => Some((
                format!("record \"unit\", synthetic({})\n", serde_json::to_string(synthetic).unwrap_or_default()),
                vec![("unit".to_string(), "unit".to_string())],
            )),
            Task::ModelUnit { model, unit } => Some((
                format!("record \"unit\", unit(model({}), {unit})\n", serde_json::to_string(model).unwrap_or_default()),
                vec![("unit".to_string(), "unit".to_string())],
            )),
            _ => None,
        }
    }

    /// Where the scripts' relative paths start and the folders they may
    /// read: an empty scratch folder, or the question's folders.
    fn folders(&self, scratch: &Path) -> (PathBuf, Vec<PathBuf>) {
        match self {
            Task::Question { roots, .. } if !roots.is_empty() => (roots[0].clone(), roots.clone()),
            _ => (scratch.to_path_buf(), vec![scratch.to_path_buf()]),
        }
    }

    /// Tools withheld from the agent's scripts.
    fn denied(&self) -> Vec<String> {
        match self {
            Task::Unit { .. } => vec!["synthetic".into(), "synthetic_neurons".into()],
            _ => Vec::new(),
        }
    }

    /// Answer fields without which an answer is malformed.
    fn required(&self) -> &'static [&'static str] {
        match self {
            Task::Function { .. } => &["CODE"],
            Task::Unit { .. } | Task::ModelUnit { .. } => &["POSITIVE", "NEGATIVE"],
            Task::Question { .. } => &[],
        }
    }

    fn prompt(&self) -> String {
        match self {
            Task::Function { name, spec: FnSpec { strings: Some(_), .. }, .. } => format!(
                "Describe the black-box function `box.{name}`. It takes one string and returns a string, a number or a bool. Call it as `box.{name}(s)` in your scripts (you cannot read its code). Find what it computes: try words, sentences, letters, digits and edge cases. Finish with [DESCRIPTION] and [CODE] (an Assay `fn f(s)` that gives exactly the same output on any word)."
            ),
            Task::Function { name, .. } => format!(
                "Describe the black-box function `box.{name}`. It takes one number and returns a number. Call it as `box.{name}(x)` in your scripts (you cannot read its code). Find what it computes over the domain [-128, 128], and any interval where it behaves differently. Start by calling it on many inputs. Finish with [DESCRIPTION], [DOMAIN] and [CODE] (an Assay `fn f(x)`)."
            ),
            Task::Question { text, .. } => {
                format!("Answer this question by running experiments: {text}\nFinish with [ANSWER].")
            }
            Task::ModelUnit { unit, .. } if takes_text(unit) => "Describe what drives the unit bound as `unit`: a neuron or attention head of a language model. Call it on text, `unit(\"some text\")`, which gives its values at every token (for a neuron [1, T]; for a head [1, T, Dh]); write varied texts, compare minimal pairs, and use `score`. Finish with [DESCRIPTION], [LABEL], [POSITIVE] and [NEGATIVE] (Assay expressions for lists of texts it should and should not respond to).".to_string(),
            Task::Unit { .. } | Task::ModelUnit { .. } => "Describe what drives the unit bound as `unit`: a unit of an image model. Call it on images, `unit(images)`, which gives {activations, masked}; use exemplars (e.g. `exemplars(unit, emoji(), k: 12)`), drawings (`svg`), edits and `score`. Finish with [DESCRIPTION], [LABEL], [POSITIVE] and [NEGATIVE] (Assay expressions for lists of images it should and should not respond to).".to_string(),
        }
    }

    fn json(&self) -> Json {
        match self {
            Task::Function { path, source, name, spec } => json!({
                "kind": "function",
                "function": name,
                "strings": spec.strings.is_some(),
                // A network behind the box is kept beside it as BOX.onnx.
                "net_sha256": spec.net.as_ref().map(|b| hex::encode(sha2::Sha256::digest(b))),
                // Where the box came from, for replay; its source is not kept here.
                "box_path": path.display().to_string(),
                "box_sha256": hex::encode(sha2::Sha256::digest(source.as_bytes())),
            }),
            Task::Unit { synthetic } => json!({"kind": "unit", "synthetic": synthetic}),
            Task::ModelUnit { model, unit } => json!({"kind": "unit", "model": model, "unit": unit}),
            Task::Question { text, roots } => json!({
                "kind": "question",
                "question": text,
                "roots": roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>(),
            }),
        }
    }
}

/// Whether a model unit, given as `unit(...)`'s arguments after the model,
/// is read on text: a `neuron:` or `head:` (of [N, T, D] or heads), which
/// only language models have; a `channel:` is read on images.
fn takes_text(unit_args: &str) -> bool {
    let mut in_string = false;
    let mut word = String::new();
    for c in unit_args.chars() {
        if c == '"' {
            in_string = !in_string;
            word.clear();
        } else if in_string {
            continue;
        } else if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            if c == ':' && (word == "neuron" || word == "head") {
                return true;
            }
            if !c.is_whitespace() {
                word.clear();
            }
        }
    }
    false
}

/// Limits of one investigation.
pub(crate) struct Limits {
    pub steps: usize,
    /// The sandbox's memory and time per step.
    pub budget: Budget,
    /// Characters of feedback per turn (long values are elided with a note).
    pub reply_chars: usize,
    /// Wall time for the whole investigation.
    pub wall: Duration,
    /// Total tokens (prompt + completion, as the endpoint reports them).
    pub tokens: u64,
    pub retry: Retry,
    /// Offer the `run_assay` function to endpoints with tool calling
    /// (scripts may still come as fenced blocks).
    pub tool_calls: bool,
    /// The model takes images: what a step shows goes back as image parts.
    pub vision: bool,
}

/// The `run_assay` function, for endpoints that support tool calling.
fn run_assay_tool() -> Json {
    json!([{
        "type": "function",
        "function": {
            "name": "run_assay",
            "description": "Check and run one Assay script in the sandbox; returns what it showed and recorded, its asserts and its errors.",
            "parameters": {
                "type": "object",
                "properties": {"script": {"type": "string", "description": "the whole Assay script"}},
                "required": ["script"],
            },
        },
    }])
}

/// A parsed final answer.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Answer {
    pub fields: BTreeMap<String, String>,
}

impl Answer {
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.fields.get(k).map(String::as_str)
    }
}

/// `[DESCRIPTION]: ...` style fields; a field runs to the next `[FIELD]`.
pub(crate) fn parse_answer(reply: &str) -> Option<Answer> {
    let mut fields = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in reply.lines() {
        let t = line.trim_start();
        let field = t.strip_prefix('[').and_then(|r| r.split_once(']')).filter(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == ' ' || c.is_ascii_digit())
        });
        if let Some((name, rest)) = field {
            if let Some((k, v)) = current.take() {
                fields.insert(k, v.trim().to_string());
            }
            current = Some((name.to_string(), rest.trim_start_matches(':').trim().to_string()));
        } else if let Some((_, v)) = current.as_mut() {
            v.push('\n');
            v.push_str(line);
        }
    }
    if let Some((k, v)) = current {
        fields.insert(k, v.trim().to_string());
    }
    let has_final = fields.contains_key("DESCRIPTION") || fields.contains_key("ANSWER");
    has_final.then_some(Answer { fields })
}

/// The ```assay (or unlabelled) fenced blocks of a reply.
pub(crate) fn scripts_in(reply: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<(bool, String)> = None;
    for line in reply.lines() {
        let t = line.trim();
        match &mut block {
            None if t.starts_with("```") => {
                let lang = t.trim_start_matches('`').trim();
                block = Some((lang.is_empty() || lang == "assay", String::new()));
            }
            Some((keep, text)) if t == "```" => {
                if *keep {
                    out.push(std::mem::take(text));
                }
                block = None;
            }
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Cuts text to `max` characters with a note saying how much was left out.
fn elide(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => {
            format!("{}\n… ({} more characters elided)", &text[..cut], text[cut..].chars().count())
        }
        None => text.to_string(),
    }
}

/// What a step produced, as text for the model.
struct StepResult {
    feedback: String,
    status: String,
}

fn run_step(
    task: &Task,
    base: &Path,
    roots: &[PathBuf],
    script: &str,
    out: &Path,
    limits: &Limits,
    seed: u64,
) -> StepResult {
    let _ = std::fs::create_dir_all(out.join("artifacts"));
    let job = Job {
        seed: Some(seed),
        save_shown_images: true,
        prelude: task.prelude(),
        deny_tools: task.denied(),
        bound: task.bound(),
        nets: task.nets(),
        // Replays and resumed benchmarks answer unchanged calls from the cache.
        ..Job::new(
            "step.assay".into(),
            script.to_string(),
            base.to_path_buf(),
            roots.to_vec(),
            out.to_path_buf(),
            limits.budget,
            crate::cache::CacheUse::On,
        )
    };
    match run_child(&job) {
        Err(e) => {
            StepResult { feedback: format!("Assay could not run the script: {e}"), status: "harness-error".into() }
        }
        Ok(End::Report(Report::CheckFailed { rendered, .. })) => {
            // Nothing ran; keep the script so the step is on record.
            let _ = std::fs::write(out.join("script.assay"), script);
            let _ = std::fs::write(out.join("check.txt"), &rendered);
            StepResult {
                feedback: format!(
                    "The script did not pass the check; nothing ran. Fix these and send the whole script again:\n{}",
                    elide(&rendered, limits.reply_chars)
                ),
                status: "check-failed".into(),
            }
        }
        Ok(End::Died { diag }) => StepResult {
            feedback: format!("The script was stopped: {}\n{}", diag.message, diag.help.clone().unwrap_or_default()),
            status: "error".into(),
        },
        Ok(End::Report(Report::Done(d))) => {
            let mut fb = String::new();
            for sh in &d.shows {
                let _ = writeln!(
                    fb,
                    "show (line {}){}:\n{}",
                    sh.line,
                    sh.title.as_deref().map(|t| format!(" {t}")).unwrap_or_default(),
                    sh.text
                );
            }
            let results = read_regular(&out.join("results.json"), 64 << 20)
                .ok()
                .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
                .unwrap_or(Json::Null);
            if let Some(records) = results["records"].as_object().filter(|r| !r.is_empty()) {
                let _ = writeln!(fb, "records: {}", serde_json::to_string(records).unwrap_or_default());
            }
            for (line, expr, msg) in &d.failed {
                let _ = writeln!(
                    fb,
                    "assert failed (line {line}): {expr}{}",
                    msg.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
                );
            }
            if d.asserts > 0 {
                let _ = writeln!(fb, "{}/{} asserts passed", d.asserts - d.failed.len(), d.asserts);
            }
            if let Some(e) = &d.error_rendered {
                let _ = writeln!(fb, "error:\n{e}");
            }
            if fb.is_empty() {
                fb.push_str("The script ran and showed nothing. Use `show` or `record` to see values.");
            }
            StepResult { feedback: elide(&fb, limits.reply_chars), status: d.status.clone() }
        }
    }
}

/// The most images of one step described for a model that takes no images.
const MAX_DESCRIBED: usize = 4;

/// For a model that takes no images: what the shown images look like, in
/// words from the vision model configured for `describe` (ASSAY_LLM_*),
/// or a note that they were not sent when none is configured.
fn describe_images(shown: &[(String, Vec<u8>)]) -> String {
    let Ok(describer) = Endpoint::from_env() else {
        return "(The script showed images; they are in the report, not sent: this model is not marked as taking images and no vision model is configured to describe them. Use numbers and labels to see them.)".to_string();
    };
    let mut out = format!("The script showed {} image(s), described by a vision model:", shown.len());
    for (i, (_, png)) in shown.iter().take(MAX_DESCRIBED).enumerate() {
        let d = describer
            .chat(vec![
                assay_stdlib::llm::text_part("Describe this image in one or two plain sentences: what it shows, colours, shapes, where things are."),
                assay_stdlib::llm::png_part(png),
            ])
            .unwrap_or_else(|e| format!("(no description: {e})"));
        let _ = write!(out, "\n{}. {}", i + 1, d.trim());
    }
    if shown.len() > MAX_DESCRIBED {
        let _ = write!(out, "\n({} more not described)", shown.len() - MAX_DESCRIBED);
    }
    out
}

/// The PNGs a step showed (written by the child under `shown/`), in order.
fn step_images(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("shown"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names.into_iter().filter_map(|n| read_regular(&dir.join("shown").join(&n), 16 << 20).ok().map(|b| (n, b))).collect()
}

/// The answer's code: the first fenced block of `[CODE]`, else its text.
fn answer_code(answer: &Answer) -> String {
    answer.get("CODE").map(|c| scripts_in(c).into_iter().next().unwrap_or_else(|| c.to_string())).unwrap_or_default()
}

/// The name the truth's `fn f` is renamed to beside the answer's `fn f`.
const TRUTH_FN: &str = "truth_of_the_box";

/// Runs a scoring script in the sandbox (the answer's code runs under the
/// same rules as every step) and returns its records, or the failure.
fn scoring_run(task: &Task, script: &str, dir: &Path, limits: &Limits) -> Result<Json, String> {
    let scratch = dir.join("score");
    let base = dir.join("files");
    let r = run_step(task, &base, std::slice::from_ref(&base), script, &scratch, limits, 0);
    let results = read_regular(&scratch.join("results.json"), 64 << 20)
        .ok()
        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
        .unwrap_or(Json::Null);
    if r.status == "ok" {
        Ok(results["records"].clone())
    } else {
        Err(elide(&r.feedback, 2000))
    }
}

/// Scores a black-box function's answer as FIND does. Numbers: the
/// answer's `fn f(x)` against the truth (the box, or the benchmark's clean
/// function) at x = i + 0.5, i in -128..127; NMSE = Σ(truth − prediction)²
/// / Σ truth² over the points where the truth is finite; solved below 0.1;
/// an error anywhere scores as unsolved. Strings: the fraction of test
/// inputs on which the answer gives exactly the box's output. `[DOMAIN]` is
/// scored against a known corrupted interval.
fn score_function(task: &Task, answer: &Answer, dir: &Path, limits: &Limits) -> Json {
    let Task::Function { name, spec, .. } = task else { return Json::Null };
    let code = answer_code(answer);
    if let Some(inputs) = &spec.strings {
        let script = format!(
            "{code}\nlet inputs = {}\nrecord \"truth\", map(inputs, s => box.{name}(s))\nrecord \"prediction\", map(inputs, s => f(s))\n",
            serde_json::to_string(inputs).unwrap_or_default()
        );
        return match scoring_run(task, &script, dir, limits) {
            Ok(r) => match (r["truth"].as_array(), r["prediction"].as_array()) {
                (Some(t), Some(p)) if t.len() == p.len() && !t.is_empty() => {
                    let right = t.iter().zip(p).filter(|(a, b)| a == b).count();
                    let accuracy = right as f64 / t.len() as f64;
                    json!({"accuracy": accuracy, "solved": right == t.len(), "inputs": t.len()})
                }
                _ => json!({"accuracy": 0, "solved": false, "error": "the scoring run recorded no outputs"}),
            },
            Err(e) => json!({"accuracy": 0, "solved": false, "error": e}),
        };
    }
    let truth = match &spec.truth {
        Some(t) => format!("{}\n", t.replacen("fn f(", &format!("fn {TRUTH_FN}("), 1)),
        None => format!("fn {TRUTH_FN}(x) {{\n  return box.{name}(x)\n}}\n"),
    };
    let script = format!(
        "{code}\n{truth}let xs = map(0..256, i => i - 128 + 0.5)\nrecord \"truth\", map(xs, x => {TRUTH_FN}(x))\nrecord \"prediction\", map(xs, x => f(x))\n"
    );
    let mut scores = match scoring_run(task, &script, dir, limits) {
        Ok(r) => {
            let nums = |k: &str| -> Option<Vec<f64>> {
                r[k].as_array().map(|a| a.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect())
            };
            match (nums("truth"), nums("prediction")) {
                (Some(t), Some(p)) if t.len() == p.len() => {
                    let n = nmse(&t, &p);
                    json!({"nmse": assay_interpreter::num_json(n), "solved": n.is_finite() && n < 0.1})
                }
                _ => json!({"nmse": null, "solved": false, "error": "the scoring run recorded no values"}),
            }
        }
        Err(e) => json!({"nmse": null, "solved": false, "error": e}),
    };
    if spec.domain_scored {
        let answered = parse_domain(answer.get("DOMAIN").unwrap_or(""));
        let iou = match (answered, spec.interval) {
            (Some(None), None) => 1.0,
            (Some(Some(a)), Some(t)) => interval_iou(a, t),
            _ => 0.0,
        };
        scores["domain_iou"] = json!(iou);
        scores["domain_correct"] = json!(iou >= 0.5);
    }
    scores
}

/// FIND's normalised mean squared error over the points where the truth is
/// finite; a non-finite prediction there makes it infinite.
pub(crate) fn nmse(truth: &[f64], prediction: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (a, b) in truth.iter().zip(prediction) {
        if a.is_finite() {
            num += (a - b) * (a - b);
            den += a * a;
        }
    }
    if num.is_nan() {
        f64::INFINITY
    } else if den > 0.0 {
        num / den
    } else if num == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// An answered `[DOMAIN]`: `Some(None)` for "none", `Some(Some((lo, hi)))`
/// for an interval (`[30, 60]`, `x < 12`, `x > 40`, `(-inf, 5]`), `None`
/// when it says neither.
pub(crate) fn parse_domain(text: &str) -> Option<Option<(f64, f64)>> {
    let t = text.to_ascii_lowercase();
    let mut nums: Vec<f64> = Vec::new();
    let bytes: Vec<char> = t.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let neg = c == '-' && i + 1 < bytes.len() && (bytes[i + 1].is_ascii_digit() || bytes[i + 1] == 'i');
        let start = i;
        let j = if neg { i + 1 } else { i };
        if j < bytes.len() && bytes[j].is_ascii_digit() {
            let mut k = j;
            while k < bytes.len() && (bytes[k].is_ascii_digit() || bytes[k] == '.') {
                k += 1;
            }
            let s: String = bytes[start..k].iter().collect();
            if let Ok(v) = s.trim_end_matches('.').parse::<f64>() {
                nums.push(v);
            }
            i = k;
            continue;
        }
        if t[t.char_indices().nth(j).map(|(b, _)| b).unwrap_or(t.len())..].starts_with("inf") {
            nums.push(if neg { f64::NEG_INFINITY } else { f64::INFINITY });
            i = j + 3;
            continue;
        }
        i += 1;
    }
    let below = t.contains('<') || t.contains('≤') || t.contains("below") || t.contains("less");
    let above = t.contains('>') || t.contains('≥') || t.contains("above") || t.contains("greater");
    match nums.as_slice() {
        [] if t.contains("none") || t.trim().is_empty() || t.starts_with("no") => Some(None),
        [] => None,
        [a] if below && !above => Some(Some((f64::NEG_INFINITY, *a))),
        [a] if above && !below => Some(Some((*a, f64::INFINITY))),
        [_] => None,
        [a, b, ..] => Some(Some((a.min(*b), a.max(*b)))),
    }
}

/// Intersection over union of two intervals, clipped to [-128, 128].
pub(crate) fn interval_iou(a: (f64, f64), b: (f64, f64)) -> f64 {
    let clip = |(lo, hi): (f64, f64)| (lo.max(-128.0), hi.min(128.0));
    let (a, b) = (clip(a), clip(b));
    let len = |(lo, hi): (f64, f64)| (hi - lo).max(0.0);
    let inter = len((a.0.max(b.0), a.1.min(b.1)));
    let union = len(a) + len(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// A field's expression: the first fenced block in it, else its text.
fn expression(field: &str) -> String {
    scripts_in(field).into_iter().next().unwrap_or_else(|| field.to_string()).trim().to_string()
}

/// The answer's predicted stimuli scored on the unit as `score` does (ROC
/// AUC of positives over negatives), in the sandbox with the unit bound.
fn score_unit(task: &Task, answer: &Answer, dir: &Path, limits: &Limits) -> Json {
    let pos = expression(answer.get("POSITIVE").unwrap_or(""));
    let neg = expression(answer.get("NEGATIVE").unwrap_or(""));
    let script =
        format!("let positives = {pos}\nlet negatives = {neg}\nrecord \"score\", score(unit, positives, negatives)\n");
    let scratch = dir.join("score");
    let base = dir.join("files");
    let r = run_step(task, &base, std::slice::from_ref(&base), &script, &scratch, limits, 0);
    let results = read_regular(&scratch.join("results.json"), 64 << 20)
        .ok()
        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
        .unwrap_or(Json::Null);
    match &results["records"]["score"] {
        Json::Object(s) if r.status == "ok" => Json::Object(s.clone()),
        _ => json!({"score": null, "error": elide(&r.feedback, 2000)}),
    }
}

/// Who writes the scripts: a language model behind an endpoint, or a
/// baseline written in Assay (benchmarks). Both go through the same loop,
/// folder, scoring and replay.
pub(crate) trait Investigator {
    /// The name the folder records: the endpoint's model, or `baseline:NAME`.
    fn name(&self) -> String;
    /// The endpoint's URL without secrets, if there is one.
    fn endpoint(&self) -> Option<String>;
    /// The next reply to the conversation; `last_step` is the folder of the
    /// step the last feedback came from, if any.
    fn reply(&mut self, messages: &[Json], tools: Option<&Json>, last_step: Option<&Path>) -> Result<Reply, String>;
    /// Text written to the folder, without secrets.
    fn scrub(&self, text: &str) -> String {
        text.to_string()
    }
}

/// A language model behind an OpenAI-compatible endpoint.
pub(crate) struct Llm {
    pub endpoint: Endpoint,
    pub retry: Retry,
}

impl Investigator for Llm {
    fn name(&self) -> String {
        self.endpoint.model.clone()
    }
    fn endpoint(&self) -> Option<String> {
        Some(self.endpoint.public_url())
    }
    fn reply(&mut self, messages: &[Json], tools: Option<&Json>, _: Option<&Path>) -> Result<Reply, String> {
        self.endpoint.converse(&self.endpoint.model, messages, tools, &self.retry)
    }
    fn scrub(&self, text: &str) -> String {
        self.endpoint.scrub(text)
    }
}

/// A baseline investigator written in Assay: its first reply is its script;
/// the script records `answer` (the final answer's text), which is its
/// second reply. No model is involved.
pub(crate) struct Baseline {
    pub name: String,
    pub script: String,
    turn: usize,
}

impl Baseline {
    pub(crate) fn new(name: &str, script: &str) -> Self {
        Baseline { name: name.to_string(), script: script.to_string(), turn: 0 }
    }
}

impl Investigator for Baseline {
    fn name(&self) -> String {
        format!("baseline:{}", self.name)
    }
    fn endpoint(&self) -> Option<String> {
        None
    }
    fn reply(&mut self, _: &[Json], _: Option<&Json>, last_step: Option<&Path>) -> Result<Reply, String> {
        self.turn += 1;
        let text = if self.turn == 1 {
            format!("```assay\n{}```", self.script)
        } else {
            // The answer the script recorded; without one, a floor answer
            // that scores as unsolved rather than a malformed reply.
            last_step
                .and_then(|d| read_regular(&d.join("results.json"), 64 << 20).ok())
                .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
                .and_then(|r| r["records"]["answer"].as_str().map(str::to_string))
                .unwrap_or_else(|| "[DESCRIPTION]: the baseline's script failed\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return 0\n}\n```\n[LABEL]: none\n[POSITIVE]: []\n[NEGATIVE]: []".to_string())
        };
        Ok(Reply {
            message: json!({"role": "assistant", "content": text}),
            text,
            usage: Json::Null,
            attempts: 1,
            tool_calls: Vec::new(),
        })
    }
}

/// How an investigation ended.
pub(crate) struct Outcome {
    pub dir: PathBuf,
    /// {status, fields, scores}, as answer.json holds it.
    pub answer: Json,
    pub status: String,
    pub steps: usize,
}

/// Runs one investigation with the configured endpoint; returns the exit code.
pub(crate) fn investigate(task: Task, limits: Limits, out_dir: &Path, json_out: bool) -> u8 {
    let endpoint = match Endpoint::for_agent() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::out::EXIT_USAGE;
        }
    };
    let mut llm = Llm { endpoint, retry: limits.retry.clone() };
    let o = match investigate_with(task, &limits, out_dir, &mut llm) {
        Ok(o) => o,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            return code;
        }
    };
    if json_out {
        crate::out::write_stdout(&format!(
            "{}\n",
            canonical(&json!({"folder": o.dir.display().to_string(), "answer": o.answer}))
        ));
    } else {
        if let Some(fields) = o.answer["fields"].as_object() {
            for (k, v) in fields {
                crate::out::write_stdout(&format!(
                    "[{k}]: {}\n",
                    crate::out::escape_controls(v.as_str().unwrap_or(""))
                ));
            }
        }
        crate::out::write_stdout(&format!(
            "{}: {} steps, scores {} → {}\n",
            o.status,
            o.steps,
            o.answer["scores"],
            o.dir.display()
        ));
    }
    if o.status == "answered" {
        crate::out::EXIT_OK
    } else {
        crate::out::EXIT_SCRIPT
    }
}

/// Runs one investigation with any investigator. Errors are (exit code,
/// message) for failures before the investigation starts or when its folder
/// cannot be finished.
pub(crate) fn investigate_with(
    task: Task,
    limits: &Limits,
    out_dir: &Path,
    investigator: &mut dyn Investigator,
) -> Result<Outcome, (u8, String)> {
    let registry = assay_stdlib::registry();
    let guide = crate::docs::agent_guide(&registry, task.focus());
    let (tmp, _) = match begin_run(out_dir, task.kind()) {
        Ok(x) => x,
        Err(e) => {
            return Err((
                crate::out::EXIT_USAGE,
                format!("cannot make the investigation folder under {}: {e}", out_dir.display()),
            ));
        }
    };
    // Scripts of a function task read nothing: their folder is an empty one.
    let files = tmp.join("files");
    let _ = std::fs::create_dir_all(&files);
    // A task's prelude (the person's words, spliced into Assay) must check
    // before the model is asked anything.
    if let Some((text, _)) = task.prelude() {
        let pf = assay_interpreter::SourceFile::new("<task>", text);
        let diags = match assay_interpreter::Sandbox::new(&files, &[]) {
            Ok(sb) => assay_interpreter::prepare(&pf, &registry, &sb).diags,
            Err(e) => vec![assay_interpreter::Diag::new(assay_interpreter::Code::Usage, e.to_string())],
        };
        if let Some(d) = diags.first() {
            let _ = std::fs::remove_dir_all(&tmp);
            let help = d.help.as_ref().map(|h| format!("\n  help: {h}")).unwrap_or_default();
            return Err((crate::out::EXIT_USAGE, format!("the unit cannot be bound: {}{help}", d.message)));
        }
        // And it must bind: run it once, with an empty script, in the sandbox.
        let probe = tmp.join("probe");
        let r = run_step(&task, &files, std::slice::from_ref(&files), "", &probe, limits, 0);
        let _ = std::fs::remove_dir_all(&probe);
        if r.status != "ok" {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err((crate::out::EXIT_USAGE, format!("the unit cannot be bound: {}", r.feedback)));
        }
    }
    let (base, roots) = task.folders(&files);
    let mut messages =
        vec![json!({"role": "system", "content": guide}), json!({"role": "user", "content": task.prompt()})];
    let mut transcript: Vec<Json> = messages.iter().map(|m| json!({"message": m})).collect();
    let mut steps: Vec<Json> = Vec::new();
    let mut answer: Option<Answer> = None;
    let mut status = "no-answer";
    let mut tokens = 0u64;
    let started = Instant::now();
    let mut asked_final = false;
    let mut step = 0usize;
    loop {
        if started.elapsed() > limits.wall || tokens > limits.tokens {
            status = if tokens > limits.tokens { "token-budget" } else { "time-budget" };
            break;
        }
        if step >= limits.steps {
            if asked_final {
                break;
            }
            asked_final = true;
            let m = json!({"role": "user", "content": format!("You have used all {} steps. Give your final answer now, in the answer format, without a script.", limits.steps)});
            transcript.push(json!({"message": m}));
            messages.push(m);
        }
        let tools = limits.tool_calls.then(run_assay_tool);
        let last_step = (step > 0).then(|| tmp.join("steps").join(format!("{step:02}")));
        let reply = match investigator.reply(&messages, tools.as_ref(), last_step.as_deref()) {
            Ok(r) => r,
            Err(e) => {
                transcript.push(json!({"endpoint_error": e}));
                status = "endpoint-failed";
                break;
            }
        };
        tokens += reply.usage["total_tokens"].as_u64().unwrap_or(0);
        // A reply with function calls is carried whole (the endpoint needs
        // its tool_calls to match the tool messages that answer them).
        let m = if reply.tool_calls.is_empty() {
            json!({"role": "assistant", "content": reply.text})
        } else {
            let mut m = reply.message.clone();
            m["role"] = json!("assistant");
            m
        };
        transcript.push(json!({"message": m, "usage": reply.usage, "attempts": reply.attempts}));
        messages.push(m);
        let mut scripts = scripts_in(&reply.text);
        for call in &reply.tool_calls {
            // A call of another name, or without a script, counts as no script.
            let script = serde_json::from_str::<Json>(&call.arguments)
                .ok()
                .and_then(|a| a["script"].as_str().map(str::to_string))
                .filter(|_| call.name == "run_assay");
            scripts.extend(script);
        }
        if let Some(a) = parse_answer(&reply.text).filter(|_| scripts.len() <= 1 || asked_final) {
            if task.required().iter().any(|f| a.get(f).is_none()) {
                // A malformed answer: say what is missing; it counts as a step.
            } else {
                answer = Some(a);
                status = "answered";
                break;
            }
        }
        if asked_final {
            status = "no-answer";
            break;
        }
        step += 1;
        let dir = tmp.join("steps").join(format!("{step:02}"));
        let (feedback, step_status) = match scripts.len() {
            1 => {
                let r = run_step(&task, &base, &roots, &scripts[0], &dir, limits, step as u64);
                (r.feedback, r.status)
            }
            0 if parse_answer(&reply.text).is_some() => (
                format!(
                    "Your answer is missing {}. See the answer format in the guide.",
                    task.required().iter().map(|f| format!("[{f}]")).collect::<Vec<_>>().join(" and ")
                ),
                "malformed-answer".to_string(),
            ),
            0 => (
                "Your reply has no script and no final answer. Reply with exactly one script in a ```assay block, or with the final answer.".to_string(),
                "no-script".to_string(),
            ),
            n => (
                format!("Your reply has {n} scripts; send exactly one ```assay block per reply (put everything in one script)."),
                "several-scripts".to_string(),
            ),
        };
        steps.push(json!({"step": step, "status": step_status, "folder": format!("steps/{step:02}")}));
        let text = format!("Step {step} of {}: {feedback}", limits.steps);
        let shown = step_images(&dir);
        let shown_files: Vec<String> = shown.iter().map(|(f, _)| format!("steps/{step:02}/shown/{f}")).collect();
        let text =
            if !limits.vision && !shown.is_empty() { format!("{text}\n{}", describe_images(&shown)) } else { text };
        let images = if limits.vision { shown } else { Vec::new() };
        if !images.is_empty() && reply.tool_calls.is_empty() {
            // Images go as OpenAI image parts; the transcript keeps their
            // digests and files instead of the data.
            let mut parts = vec![json!({"type": "text", "text": text})];
            let mut logged = parts.clone();
            for (file, png) in &images {
                let b64 = base64::engine::general_purpose::STANDARD.encode(png);
                parts.push(json!({"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{b64}")}}));
                logged.push(json!({"type": "image", "file": format!("steps/{step:02}/shown/{file}"), "sha256": hex::encode(sha2::Sha256::digest(png))}));
            }
            transcript.push(json!({"message": {"role": "user", "content": logged}, "images": shown_files}));
            messages.push(json!({"role": "user", "content": parts}));
        } else if reply.tool_calls.is_empty() {
            let m = json!({"role": "user", "content": text});
            transcript.push(json!({"message": m, "images": shown_files}));
            messages.push(m);
        } else {
            // Every call gets its answer; the step's feedback goes to the first.
            for (i, call) in reply.tool_calls.iter().enumerate() {
                let content = if i == 0 { text.clone() } else { "Not run: send one script per reply.".to_string() };
                let m = json!({"role": "tool", "tool_call_id": call.id, "content": content});
                transcript.push(json!({"message": m}));
                messages.push(m);
            }
        }
    }
    let scores = match (&answer, &task) {
        (Some(a), Task::Function { .. }) => score_function(&task, a, &tmp, limits),
        (Some(a), Task::Unit { .. } | Task::ModelUnit { .. }) => score_unit(&task, a, &tmp, limits),
        _ => Json::Null,
    };
    let answer_json = json!({
        "status": status,
        "fields": answer.as_ref().map(|a| json!(a.fields)).unwrap_or(Json::Null),
        "scores": scores,
    });
    let task_json = task.json();
    let write = |name: &str, text: &str| std::fs::write(tmp.join(name), text);
    let transcript_text: String =
        transcript.iter().map(|t| investigator.scrub(&serde_json::to_string(t).unwrap_or_default()) + "\n").collect();
    let manifest = json!({
        "assay_version": assay_interpreter::ASSAY_VERSION,
        "task": task_json,
        "model": investigator.name(),
        "endpoint": investigator.endpoint(),
        "steps": steps,
        "status": status,
        "tokens": tokens,
        "guide_sha256": hex::encode(sha2::Sha256::digest(guide.as_bytes())),
        "limits": {"steps": limits.steps, "memory": limits.budget.memory, "step_timeout_seconds": limits.budget.timeout.as_secs_f64(), "reply_chars": limits.reply_chars},
    });
    let report = report_html(&task_json, &transcript, &answer_json);
    let written = write("transcript.jsonl", &transcript_text)
        .and_then(|_| write("answer.json", &canonical(&answer_json)))
        .and_then(|_| write("report.html", &report))
        .and_then(|_| write("manifest.json", &canonical(&manifest)));
    let dir = match written.and_then(|_| finish_run(&tmp)) {
        Ok(d) => d,
        Err(e) => {
            return Err((crate::out::EXIT_SCRIPT, format!("cannot finish the investigation folder: {e}")));
        }
    };
    Ok(Outcome { dir, answer: answer_json, status: status.to_string(), steps: steps.len() })
}

fn report_html(task: &Json, transcript: &[Json], answer: &Json) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Investigation</h1><pre>{}</pre>",
        html_escape(&serde_json::to_string_pretty(task).unwrap_or_default())
    );
    for t in transcript {
        let role = t["message"]["role"].as_str().unwrap_or("");
        if role == "system" {
            continue;
        }
        let content = &t["message"]["content"];
        let text = match content.as_array() {
            Some(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n"),
            None => content.as_str().or(t["endpoint_error"].as_str()).unwrap_or("").to_string(),
        };
        let images: String = t["images"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str())
                    .map(|f| format!("<img src=\"{}\" alt=\"{}\">", html_escape(f), html_escape(f)))
                    .collect()
            })
            .unwrap_or_default();
        let _ = write!(
            body,
            "<section class=\"{role}\"><h3>{role}</h3><pre>{}</pre>{images}</section>",
            html_escape(&text)
        );
    }
    let _ = write!(
        body,
        "<h2>Answer</h2><pre>{}</pre>",
        html_escape(&serde_json::to_string_pretty(answer).unwrap_or_default())
    );
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Assay investigation</title><style>body{{font-family:sans-serif;max-width:60em;margin:auto}}pre{{white-space:pre-wrap;background:#f6f6f6;padding:.5em}}.assistant h3{{color:#3b6ea5}}img{{max-width:224px;margin:4px;border:1px solid #ccc}}</style></head><body>{body}</body></html>\n"
    )
}

/// Re-runs every step of an investigation without the model and checks
/// each results.json byte for byte; names the first step that differs.
pub(crate) fn replay(dir: &Path, box_override: Option<&Path>, json_out: bool) -> u8 {
    let manifest: Json =
        match read_regular(&dir.join("manifest.json"), 16 << 20).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
            Some(m) => m,
            None => {
                eprintln!("error: {} is not a finished investigation (no readable manifest.json)", dir.display());
                return crate::out::EXIT_USAGE;
            }
        };
    let t = &manifest["task"];
    let task = match t["kind"].as_str() {
        Some("function") => {
            let path = box_override
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(t["box_path"].as_str().unwrap_or("")));
            let source = match read_regular(&path, 1 << 20).ok().and_then(|b| String::from_utf8(b).ok()) {
                Some(s) => s,
                None => {
                    eprintln!("error: cannot read the black box {}; pass it with --box FILE", path.display());
                    return crate::out::EXIT_USAGE;
                }
            };
            if hex::encode(sha2::Sha256::digest(source.as_bytes())) != t["box_sha256"].as_str().unwrap_or("") {
                eprintln!(
                    "error: {} is not the black box this investigation used (its sha256 differs)",
                    path.display()
                );
                return crate::out::EXIT_ASSERT;
            }
            // Replay re-runs steps; it does not score, so no truth is needed.
            let strings = t["strings"].as_bool().unwrap_or(false).then(Vec::new);
            let net = match t["net_sha256"].as_str() {
                None => None,
                Some(want) => {
                    let onnx = path.with_extension("onnx");
                    match read_regular(&onnx, 64 << 20) {
                        Ok(b) if hex::encode(sha2::Sha256::digest(&b)) == want => Some(b),
                        _ => {
                            eprintln!(
                                "error: the box's network {} is missing or not the one this investigation used",
                                onnx.display()
                            );
                            return crate::out::EXIT_USAGE;
                        }
                    }
                }
            };
            let spec = FnSpec { strings, net, ..Default::default() };
            Task::Function { path, source, name: t["function"].as_str().unwrap_or("f").to_string(), spec }
        }
        Some("unit") => match (t["synthetic"].as_str(), t["model"].as_str(), t["unit"].as_str()) {
            (Some(s), _, _) => Task::Unit { synthetic: s.to_string() },
            (None, Some(m), Some(u)) => Task::ModelUnit { model: m.to_string(), unit: u.to_string() },
            _ => {
                eprintln!("error: the investigation's unit is not recorded");
                return crate::out::EXIT_USAGE;
            }
        },
        Some("question") => Task::Question {
            text: t["question"].as_str().unwrap_or("").to_string(),
            roots: t["roots"]
                .as_array()
                .map(|a| a.iter().filter_map(|r| r.as_str().map(PathBuf::from)).collect())
                .unwrap_or_default(),
        },
        _ => {
            eprintln!("error: the investigation's task is not one Assay knows");
            return crate::out::EXIT_USAGE;
        }
    };
    let limits = Limits {
        steps: 0,
        budget: Budget::defaults(),
        reply_chars: 6000,
        wall: Duration::from_secs(3600),
        tokens: u64::MAX,
        retry: Retry::default(),
        tool_calls: false,
        vision: false,
    };
    let scratch = std::env::temp_dir().join(format!("assay-replay-{}", std::process::id()));
    let files = scratch.join("files");
    let _ = std::fs::create_dir_all(&files);
    let (base, roots) = task.folders(&files);
    let mut checked = 0;
    let mut answered = 0;
    let mut differs: Option<String> = None;
    let mut names: Vec<String> = std::fs::read_dir(dir.join("steps"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    for name in names {
        let step_dir = dir.join("steps").join(&name);
        let Some(script) =
            read_regular(&step_dir.join("script.assay"), 16 << 20).ok().and_then(|b| String::from_utf8(b).ok())
        else {
            continue;
        };
        let Ok(want) = read_regular(&step_dir.join("results.json"), 1 << 30) else {
            // A step that did not pass the check has no results to compare.
            continue;
        };
        let seed = name.parse::<u64>().unwrap_or(0);
        let out = scratch.join(&name);
        run_step(&task, &base, &roots, &script, &out, &limits, seed);
        let got = read_regular(&out.join("results.json"), 1 << 30).unwrap_or_default();
        answered += read_regular(&out.join("manifest.json"), 16 << 20)
            .ok()
            .and_then(|b| assay_interpreter::Manifest::parse(&b).ok())
            .and_then(|m| m.call_cache?.answered)
            .unwrap_or(0) as u64;
        checked += 1;
        if got != want {
            differs = Some(name.clone());
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if json_out {
        crate::out::write_stdout(&format!(
            "{}\n",
            json!({"replayed": checked, "identical": differs.is_none(), "first_difference": differs, "cache_answered": answered})
        ));
    } else if let Some(d) = &differs {
        crate::out::write_stdout(&format!("NOT replayed: step {d} gives a different results.json\n"));
    } else {
        crate::out::write_stdout(&format!(
            "replayed: {checked} steps re-ran without the model, every results.json byte-identical ({answered} tool calls answered from the call cache)\n"
        ));
    }
    if differs.is_some() {
        crate::out::EXIT_ASSERT
    } else {
        crate::out::EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_read_in_the_forms_answers_give_them() {
        assert_eq!(parse_domain("none"), Some(None));
        assert_eq!(parse_domain("No interval."), Some(None));
        assert_eq!(parse_domain("[30, 60]"), Some(Some((30.0, 60.0))));
        assert_eq!(parse_domain("between 60 and 30.5"), Some(Some((30.5, 60.0))));
        assert_eq!(parse_domain("x < -12"), Some(Some((f64::NEG_INFINITY, -12.0))));
        assert_eq!(parse_domain("for x > 40 it is noise"), Some(Some((40.0, f64::INFINITY))));
        assert_eq!(parse_domain("[-inf, 54]"), Some(Some((f64::NEG_INFINITY, 54.0))));
        assert_eq!(parse_domain("(54.1, inf)"), Some(Some((54.1, f64::INFINITY))));
        assert_eq!(parse_domain("somewhere on the right"), None);
        assert_eq!(parse_domain("around 7"), None);
    }

    #[test]
    fn interval_overlap_and_nmse_follow_their_definitions() {
        assert_eq!(interval_iou((0.0, 10.0), (5.0, 15.0)), 5.0 / 15.0);
        assert_eq!(interval_iou((f64::NEG_INFINITY, 0.0), (-128.0, 0.0)), 1.0);
        assert_eq!(interval_iou((0.0, 1.0), (2.0, 3.0)), 0.0);
        assert_eq!(nmse(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert_eq!(nmse(&[1.0, 1.0], &[0.0, 0.0]), 1.0);
        // Points where the truth is not finite are skipped; a non-finite
        // prediction where it is finite is infinitely wrong.
        assert_eq!(nmse(&[f64::NAN, 2.0], &[5.0, 2.0]), 0.0);
        assert_eq!(nmse(&[1.0], &[f64::NAN]), f64::INFINITY);
        assert_eq!(nmse(&[0.0], &[0.0]), 0.0);
        assert_eq!(nmse(&[0.0], &[1.0]), f64::INFINITY);
    }

    #[test]
    fn neurons_and_heads_are_read_on_text_and_channels_on_images() {
        assert!(takes_text("\"/m/mlp\", neuron: 7"));
        assert!(takes_text("\"/m/heads\", head : 4, heads: 9"));
        assert!(!takes_text("\"/b/Relu6\", channel: 42"));
        // A tensor named like a parameter is not one.
        assert!(!takes_text("\"neuron: 3\", channel: 1"));
        assert!(!takes_text("\"x\", channel: 1, reduce: \"mean\""));
    }

    #[test]
    fn answers_and_scripts_are_read_from_replies() {
        let r = "I think so.\n[DESCRIPTION]: a line\nwith slope 2\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return 2 * x\n}\n```\n";
        let a = parse_answer(r).expect("an answer");
        assert_eq!(a.get("DESCRIPTION"), Some("a line\nwith slope 2"));
        assert_eq!(a.get("DOMAIN"), Some("none"));
        assert_eq!(scripts_in(a.get("CODE").unwrap_or("")), vec!["fn f(x) {\n  return 2 * x\n}\n"]);
        assert!(parse_answer("let x = [1]\nshow x[0]").is_none());
        assert_eq!(
            scripts_in("a\n```assay\nshow 1\n```\nb\n```python\nprint(1)\n```\n```\nshow 2\n```"),
            vec!["show 1\n", "show 2\n"]
        );
        assert_eq!(elide("abcdef", 3), "abc\n… (3 more characters elided)");
    }
}
