//! One step of an investigation: a script run in the sandboxed child, and
//! what it showed turned into feedback the model can act on.

use super::*;
use crate::supervise::{run_child, End, Job, Report};
use assay_interpreter::read_regular;
use assay_stdlib::llm::Endpoint;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

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
        let (len, fraction) = super::domain::decimal_end(&b[i..]);
        let j = i + len;
        if fraction {
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
    // The step runs, and is kept, in the canonical layout, so investigations
    // diff cleanly: formatting keeps every token on its line, so each line
    // an error names is the line the model wrote. A script that does not
    // parse runs as written, to be refused with its own text.
    let formatted = assay_grammar::format(script).ok();
    let script = formatted.as_deref().unwrap_or(script);
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
            if !d.warnings_rendered.is_empty() {
                let _ = writeln!(fb, "warnings (the script ran):\n{}", d.warnings_rendered);
            }
            if fb.is_empty() {
                fb.push_str("The script ran and showed nothing. Use `show` or `record` to see values.");
            }
            let fb = readable_numbers(&fb);
            StepResult {
                feedback: elide(&fb, limits.reply_chars),
                status: d.status.to_string(),
                diagnostics: d.diagnostics.clone(),
                shown_images: d.shown_images,
            }
        }
    }
}

/// The most images of one step described for a model that takes no images.
pub(super) const MAX_DESCRIBED: usize = 4;

/// For a model that takes no images: what the shown images look like, in
/// words from the vision model configured for `describe` (ASSAY_LLM_*),
/// or a note that they were not sent when none is configured.
pub(super) fn describe_images(shown: &[(String, Vec<u8>)]) -> String {
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
pub(super) fn step_images(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("shown"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names.into_iter().filter_map(|n| read_regular(&dir.join("shown").join(&n), 16 << 20).ok().map(|b| (n, b))).collect()
}
