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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assay_interpreter::{begin_run, canonical, finish_run, html_escape, read_regular};
use assay_stdlib::llm::{Endpoint, Reply, Retry};
use base64::Engine as _;
use serde_json::{json, Value as Json};
use sha2::Digest;

use crate::supervise::{run_child, Budget, End, Job, Report};

mod answer;
mod domain;

use answer::{check_and_score, correction, Answer, Problem};
pub(crate) use answer::{parse_answer, scripts_in};

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

    /// The answer's fields and their forms, as the correction restates them.
    pub(crate) fn answer_form(&self) -> String {
        match self {
            Task::Function { spec: FnSpec { strings: Some(_), .. }, .. } => {
                "[DESCRIPTION]: what it computes, in words.\n[CODE]:\n```assay\nfn f(s) {\n  return s\n}\n```".into()
            }
            Task::Function { .. } => format!(
                "[DESCRIPTION]: what it computes, in words.\n[DOMAIN]: one of {}.\n[CODE]:\n```assay\nfn f(x) {{\n  return 2 * x + 1\n}}\n```",
                domain::FORMS
            ),
            Task::Unit { .. } | Task::ModelUnit { .. } => "[DESCRIPTION]: what drives it, in words.\n[LABEL]: a few words.\n[POSITIVE]: an Assay expression (no backticks) for a list of stimuli it responds to, e.g. [svg(...), svg(...)] or [\"text\", \"text\"].\n[NEGATIVE]: the same for stimuli it does not respond to.".into(),
            Task::Question { .. } => "[ANSWER]: your answer, and the evidence.".into(),
        }
    }

    fn prompt(&self) -> String {
        match self {
            Task::Function { name, spec: FnSpec { strings: Some(_), .. }, .. } => format!(
                "Describe the black-box function `box.{name}`. It takes one string and returns a string, a number or a bool. Call it as `box.{name}(s)` in your scripts (you cannot read its code). Find what it computes: try words, sentences, letters, digits and edge cases. Finish with [DESCRIPTION] and [CODE] (an Assay `fn f(s)` that gives exactly the same output on any word)."
            ),
            Task::Function { name, .. } => format!(
                "Describe the black-box function `box.{name}`. It takes one number and returns a number. Call it as `box.{name}(x)` in your scripts (you cannot read its code). Find what it computes over the domain [-128, 128], and any interval where it behaves differently. Start by calling it on many inputs. The box may be deterministic: where it adds noise, the noise can be a fixed function of x, the same on every call, so repeated calls at one x need not differ and noise can look like signal. Finish with [DESCRIPTION], [DOMAIN] and [CODE] (an Assay `fn f(x)`)."
            ),
            Task::Question { text, .. } => {
                format!("Answer this question by running experiments: {text}\nFinish with [ANSWER].")
            }
            Task::ModelUnit { unit, .. } if takes_text(unit) => "Describe what drives the unit bound as `unit`: a neuron or attention head of a language model. Call it on text, `unit(\"some text\")`, which gives {tokens, activations, max, at}: its value at every token beside the token (for a head, the norm of its output); find the contexts that drive it most with `exemplars(unit, sample(corpus(), 300, seed: 1), k: 10)` (`.contexts` marks the strongest token as ⟦token⟧), write varied texts, compare minimal pairs, and use `score`. Finish with [DESCRIPTION], [LABEL], [POSITIVE] and [NEGATIVE] (Assay expressions for lists of texts it should and should not respond to).".to_string(),
            Task::Unit { .. } | Task::ModelUnit { .. } => "Describe what drives the unit bound as `unit`: a unit of an image model. Call it on images, `unit(images)`, which gives {activations, masked}; use exemplars over a sample (e.g. `exemplars(unit, sample(emoji(), 200, seed: 1), k: 12)`; a whole data set can take longer than a step may run), drawings (`svg`), edits and `score`. Finish with [DESCRIPTION], [LABEL], [POSITIVE] and [NEGATIVE] (Assay expressions for lists of images it should and should not respond to).".to_string(),
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
    /// How many times an answer that was not accepted may be given again.
    pub answer_retries: usize,
}

/// The request for the final answer when the steps are spent.
fn final_request(steps: usize) -> String {
    format!("You have used all {steps} steps. Give your final answer now, in the answer format, without a script.")
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

/// Cuts text to `max` characters with a note saying how much was left out
/// and how to see the rest.
pub(crate) fn elide(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!(
            "{}\n… ({} more characters elided: show fewer values at a time, or a slice such as `xs[20..40]`, to see the rest)",
            &text[..cut],
            text[cut..].chars().count()
        ),
        None => text.to_string(),
    }
}

/// Decimal numbers with more than 12 significant digits (binary noise such
/// as `-3.4000000000000004`) rewritten to 10 significant digits; the run
/// record keeps every value exactly.
pub(crate) fn readable_numbers(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.'));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
            j += 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j < b.len() && (b[j] == b'e' || b[j] == b'E') {
                let mut k = j + 1;
                if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
                    k += 1;
                }
                let d = k;
                while k < b.len() && b[k].is_ascii_digit() {
                    k += 1;
                }
                if k > d {
                    j = k;
                }
            }
            let token = &text[i..j];
            let mantissa = token.split(['e', 'E']).next().unwrap_or(token);
            let significant = mantissa.trim_start_matches(['0', '.']).chars().filter(char::is_ascii_digit).count();
            let word_follows = j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'.');
            if let (true, false, Ok(v)) = (significant > 12, word_follows, token.parse::<f64>()) {
                let r: f64 = format!("{v:.9e}").parse().unwrap_or(v);
                out.push_str(&text[copied..i]);
                if r != 0.0 && (r.abs() < 1e-4 || r.abs() >= 1e15) {
                    out.push_str(&format!("{r:e}"));
                } else {
                    out.push_str(&format!("{r}"));
                }
                copied = j;
            }
        }
        i = j;
    }
    out.push_str(&text[copied..]);
    out
}

/// What a step produced, as text for the model.
pub(crate) struct StepResult {
    pub feedback: String,
    pub status: String,
    /// The run's diagnostics (JSON, with spans into the script).
    pub diagnostics: Vec<Json>,
    /// Images the script showed, all of them (at most `MAX_SHOWN_IMAGES` are kept).
    pub shown_images: usize,
}

/// Where and how one script runs for a task.
pub(crate) struct StepRun<'a> {
    pub task: &'a Task,
    pub base: &'a Path,
    pub roots: &'a [PathBuf],
    /// Whether the task's black box is bound (not for checking an answer's code).
    pub bind_box: bool,
}

impl<'a> StepRun<'a> {
    pub(crate) fn new(task: &'a Task, base: &'a Path, roots: &'a [PathBuf]) -> Self {
        StepRun { task, base, roots, bind_box: true }
    }
}

pub(crate) fn run_step(at: StepRun<'_>, script: &str, out: &Path, limits: &Limits, seed: u64) -> StepResult {
    let task = at.task;
    let _ = std::fs::create_dir_all(out.join("artifacts"));
    let job = Job {
        seed: Some(seed),
        save_shown_images: true,
        prelude: task.prelude(),
        deny_tools: task.denied(),
        bound: if at.bind_box { task.bound() } else { Vec::new() },
        nets: if at.bind_box { task.nets() } else { Vec::new() },
        // Replays and resumed benchmarks answer unchanged calls from the cache.
        ..Job::new(
            "step.assay".into(),
            script.to_string(),
            at.base.to_path_buf(),
            at.roots.to_vec(),
            out.to_path_buf(),
            limits.budget,
            crate::cache::CacheUse::On,
        )
    };
    let result = |feedback: String, status: &str| StepResult {
        feedback,
        status: status.to_string(),
        diagnostics: Vec::new(),
        shown_images: 0,
    };
    match run_child(&job) {
        Err(e) => result(format!("Assay could not run the script: {e}"), "harness-error"),
        Ok(End::Report(Report::CheckFailed { rendered, diagnostics })) => {
            // Nothing ran; keep the script so the step is on record.
            let _ = std::fs::write(out.join("script.assay"), script);
            let _ = std::fs::write(out.join("check.txt"), &rendered);
            StepResult {
                diagnostics,
                ..result(
                    format!(
                        "The script did not pass the check; nothing ran. Fix these and send the whole script again:\n{}",
                        elide(&rendered, limits.reply_chars)
                    ),
                    "check-failed",
                )
            }
        }
        Ok(End::Died { diag }) => StepResult {
            diagnostics: vec![diag.to_json()],
            ..result(
                format!("The script was stopped: {}\n{}", diag.message, diag.help.clone().unwrap_or_default()),
                "error",
            )
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
            let fb = readable_numbers(&fb);
            StepResult {
                feedback: elide(&fb, limits.reply_chars),
                status: d.status.clone(),
                diagnostics: d.diagnostics.clone(),
                shown_images: d.shown_images,
            }
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
        let r = run_step(StepRun::new(&task, &files, std::slice::from_ref(&files)), "", &probe, limits, 0);
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
    let mut scores = Json::Null;
    // Every answer that was sent back, with its problems.
    let mut rejected: Vec<Json> = Vec::new();
    let status;
    let mut tokens = 0u64;
    let started = Instant::now();
    let mut asked_final = false;
    let mut step = 0usize;
    loop {
        if started.elapsed() > limits.wall || tokens > limits.tokens {
            status = if tokens > limits.tokens { "token-budget" } else { "time-budget" };
            break;
        }
        if step >= limits.steps && !asked_final {
            // Only when no step ran (--steps 0); otherwise the last step's
            // feedback carried this request with its output and images.
            asked_final = true;
            let m = json!({"role": "user", "content": final_request(limits.steps)});
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
        // A reply with answer fields is an answer (its [CODE] block is not
        // a step), unless it calls run_assay: those calls must be answered.
        let attempt = parse_answer(&reply.text).filter(|_| reply.tool_calls.is_empty() || asked_final);
        if let Some(a) = attempt {
            match check_and_score(&task, &a, &tmp, limits) {
                Ok(s) => {
                    answer = Some(a);
                    scores = s;
                    status = "answered";
                    break;
                }
                Err(problems) => {
                    let tries_left = limits.answer_retries.saturating_sub(rejected.len());
                    rejected.push(json!({"problems": problems.iter().map(Problem::json).collect::<Vec<_>>()}));
                    if tries_left == 0 {
                        // Scored as failed, and the record says why.
                        answer = Some(a);
                        scores = json!({
                            "solved": false,
                            "failed": format!("the answer was not accepted after {} tries: {}", rejected.len(), problems.iter().map(|p| format!("[{}] {}", p.field, p.message)).collect::<Vec<_>>().join("; ")),
                        });
                        status = "answer-rejected";
                        break;
                    }
                    let text = correction(&problems, tries_left, &task);
                    let answered_calls: Vec<_> = reply.tool_calls.iter().map(|c| c.id.clone()).collect();
                    for id in answered_calls {
                        let m = json!({"role": "tool", "tool_call_id": id, "content": "Not run: your reply was taken as a final answer."});
                        transcript.push(json!({"message": m}));
                        messages.push(m);
                    }
                    let m = json!({"role": "user", "content": text});
                    transcript.push(json!({"message": m, "answer_rejected": rejected.len()}));
                    messages.push(m);
                    continue;
                }
            }
        }
        if asked_final {
            // Steps are spent: a script is not run; the model is told once more.
            if rejected.len() >= limits.answer_retries {
                status = "no-answer";
                break;
            }
            rejected.push(json!({"problems": [{"field": "", "problem": "a script instead of the final answer"}]}));
            for call in &reply.tool_calls {
                let m = json!({"role": "tool", "tool_call_id": call.id, "content": "Not run: no steps are left."});
                transcript.push(json!({"message": m}));
                messages.push(m);
            }
            let m = json!({"role": "user", "content": format!("No steps are left, so nothing was run. {}", final_request(limits.steps))});
            transcript.push(json!({"message": m}));
            messages.push(m);
            continue;
        }
        step += 1;
        let dir = tmp.join("steps").join(format!("{step:02}"));
        let (feedback, step_status, shown_total) = match scripts.len() {
            1 => {
                let r = run_step(StepRun::new(&task, &base, &roots), &scripts[0], &dir, limits, step as u64);
                (r.feedback, r.status, r.shown_images)
            }
            0 => (
                "Your reply has no script and no final answer. Reply with exactly one script in a ```assay block, or with the final answer.".to_string(),
                "no-script".to_string(),
                0,
            ),
            n => (
                format!("Your reply has {n} scripts; send exactly one ```assay block per reply (put everything in one script)."),
                "several-scripts".to_string(),
                0,
            ),
        };
        steps.push(json!({"step": step, "status": step_status, "folder": format!("steps/{step:02}")}));
        let mut text = format!("Step {step} of {}: {feedback}", limits.steps);
        let shown = step_images(&dir);
        if shown_total > shown.len() {
            let _ = write!(
                text,
                "\n(The script showed {shown_total} images; the first {} are {}, {} left out: show at most {} per step.)",
                shown.len(),
                if limits.vision { "attached" } else { "kept" },
                shown_total - shown.len(),
                crate::supervise::MAX_SHOWN_IMAGES
            );
        }
        if step >= limits.steps {
            // The request for the final answer carries the last step's output and images.
            asked_final = true;
            let _ = write!(text, "\n\n{}", final_request(limits.steps));
        }
        let shown_files: Vec<String> = shown.iter().map(|(f, _)| format!("steps/{step:02}/shown/{f}")).collect();
        let text =
            if !limits.vision && !shown.is_empty() { format!("{text}\n{}", describe_images(&shown)) } else { text };
        let images = if limits.vision { shown } else { Vec::new() };
        // Images go as OpenAI image parts in a user message; the transcript
        // keeps their digests and files instead of the data.
        let image_message = |text: &str| {
            let mut parts = vec![json!({"type": "text", "text": text})];
            let mut logged = parts.clone();
            for (file, png) in &images {
                let b64 = base64::engine::general_purpose::STANDARD.encode(png);
                parts.push(json!({"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{b64}")}}));
                logged.push(json!({"type": "image", "file": format!("steps/{step:02}/shown/{file}"), "sha256": hex::encode(sha2::Sha256::digest(png))}));
            }
            (
                json!({"role": "user", "content": parts}),
                json!({"message": {"role": "user", "content": logged}, "images": shown_files}),
            )
        };
        if reply.tool_calls.is_empty() {
            if images.is_empty() {
                let m = json!({"role": "user", "content": text});
                transcript.push(json!({"message": m, "images": shown_files}));
                messages.push(m);
            } else {
                let (m, logged) = image_message(&text);
                transcript.push(logged);
                messages.push(m);
            }
        } else {
            // Every call gets its answer; the step's feedback goes to the first.
            for (i, call) in reply.tool_calls.iter().enumerate() {
                let content = if i == 0 { text.clone() } else { "Not run: send one script per reply.".to_string() };
                let m = json!({"role": "tool", "tool_call_id": call.id, "content": content});
                transcript.push(json!({"message": m}));
                messages.push(m);
            }
            // A tool message cannot carry images: they follow as a user message.
            if !images.is_empty() {
                let (m, logged) = image_message(&format!("The images step {step} showed:"));
                transcript.push(logged);
                messages.push(m);
            }
        }
    }
    let answer_json = json!({
        "status": status,
        "fields": answer.as_ref().map(|a| json!(a.fields)).unwrap_or(Json::Null),
        "scores": scores,
        "rejected": rejected,
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
pub(crate) fn replay(dir: &Path, box_override: Option<&Path>, allow_read: &[PathBuf], json_out: bool) -> u8 {
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
        // The folders a question's scripts read come from the command line
        // (as for `assay verify`), never from the folder being replayed:
        // anyone who can write it could otherwise widen what the replay reads.
        Some("question") => Task::Question {
            text: t["question"].as_str().unwrap_or("").to_string(),
            roots: if allow_read.is_empty() {
                std::env::current_dir().map(|d| vec![d]).unwrap_or_default()
            } else {
                allow_read.iter().map(|r| std::path::absolute(r).unwrap_or_else(|_| r.clone())).collect()
            },
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
        answer_retries: 0,
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
        run_step(StepRun::new(&task, &base, &roots), &script, &out, &limits, seed);
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
        crate::out::write_stdout(&format!(
            "NOT replayed: step {} gives a different results.json\n",
            crate::out::escape_controls(d)
        ));
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
    fn neurons_and_heads_are_read_on_text_and_channels_on_images() {
        assert!(takes_text("\"/m/mlp\", neuron: 7"));
        assert!(takes_text("\"/m/heads\", head : 4, heads: 9"));
        assert!(!takes_text("\"/b/Relu6\", channel: 42"));
        // A tensor named like a parameter is not one.
        assert!(!takes_text("\"neuron: 3\", channel: 1"));
        assert!(!takes_text("\"x\", channel: 1, reduce: \"mean\""));
    }

    #[test]
    fn elided_output_says_how_much_was_cut_and_how_to_see_it() {
        let e = elide("abcdef", 3);
        assert!(e.starts_with("abc\n… (3 more characters elided"), "{e}");
        assert!(e.contains("slice"), "{e}");
        assert_eq!(elide("abc", 3), "abc");
    }

    #[test]
    fn noisy_floats_read_at_a_readable_precision() {
        assert_eq!(readable_numbers("[-3.4000000000000004, 0.1, 2]"), "[-3.4, 0.1, 2]");
        assert_eq!(readable_numbers("x = 0.30000000000000004 and 1e-7"), "x = 0.3 and 1e-7");
        assert_eq!(readable_numbers("3.14159265358979"), "3.141592654");
        // Names and short numbers are left alone.
        assert_eq!(readable_numbers("v1.2345678901234567 1.5"), "v1.2345678901234567 1.5");
    }
}
