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

use assay_interpreter::ManifestFile;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assay_interpreter::{begin_run, canonical, finish_run};
use assay_stdlib::llm::{Endpoint, Retry};
use base64::Engine as _;
use serde_json::{json, Value as Json};
use sha2::Digest;

use crate::supervise::Budget;

mod answer;
mod conversation;
mod domain;

use answer::{check_and_score, correction, Answer, Problem};
pub(crate) use answer::{parse_answer, scripts_in};
use conversation::Conversation;

mod investigators;
pub mod manifest;
mod replay;
mod report;
mod step;
mod task;
pub(crate) use investigators::*;
pub use manifest::{Ending, InvestigationManifest, LimitsRecord, StepEntry, TaskRecord};
pub use replay::replay;
use report::*;
pub(crate) use step::*;
pub use task::Task;
pub(crate) use task::*;

/// Limits of one investigation.
pub struct Limits {
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

/// How an investigation ended.
pub(crate) struct Outcome {
    pub dir: PathBuf,
    /// {status, fields, scores}, as answer.json holds it.
    pub answer: Json,
    pub status: Ending,
    pub steps: usize,
}

/// Runs one investigation with the configured endpoint; returns the exit code.
pub fn investigate(task: Task, limits: Limits, out_dir: &Path, json_out: bool) -> u8 {
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
    if o.status == Ending::Answered {
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
    let (tmp, files, _lease) = open_investigation(&task, limits, out_dir, &registry)?;
    let (base, roots) = task.folders(&files);
    let mut conv = Conversation::new(&guide, task.prompt());
    let mut p = Progress::default();
    let started = Instant::now();
    let status = loop {
        if let Some(sig) = crate::supervise::interrupted() {
            // A stopped investigation is not kept: it would read as finished.
            let _ = std::fs::remove_dir_all(&tmp);
            return Err((
                crate::out::EXIT_SCRIPT,
                format!("stopped by signal {sig} before it finished; the unfinished investigation was not kept"),
            ));
        }
        if started.elapsed() > limits.wall || p.tokens > limits.tokens {
            break if p.tokens > limits.tokens { Ending::TokenBudget } else { Ending::TimeBudget };
        }
        if p.step >= limits.steps && !p.asked_final {
            // Only when no step ran (--steps 0); otherwise the last step's
            // feedback carried this request with its output and images.
            p.asked_final = true;
            conv.say(json!({"role": "user", "content": final_request(limits.steps)}));
        }
        let tools = limits.tool_calls.then(run_assay_tool);
        let last_step = (p.step > 0).then(|| tmp.join("steps").join(format!("{:02}", p.step)));
        let reply = match investigator.reply(&conv.messages, tools.as_ref(), last_step.as_deref()) {
            Ok(r) => r,
            Err(e) => {
                conv.transcript.push(json!({"endpoint_error": e}));
                break Ending::EndpointFailed;
            }
        };
        p.tokens += reply.usage["total_tokens"].as_u64().unwrap_or(0);
        conv.reply(&reply);
        // A reply with answer fields is an answer (its [CODE] block is not
        // a step), unless it calls run_assay: those calls must be answered.
        if let Some(a) = parse_answer(&reply.text).filter(|_| reply.tool_calls.is_empty() || p.asked_final) {
            match take_answer(&mut p, &mut conv, &task, a, &reply, &tmp, limits) {
                Some(status) => break status,
                None => continue,
            }
        }
        if p.asked_final {
            // Steps are spent: a script is not run; the model is told once more.
            if p.rejected.len() >= limits.answer_retries {
                break Ending::NoAnswer;
            }
            p.rejected.push(json!({"problems": [{"field": "", "problem": "a script instead of the final answer"}]}));
            conv.answer_calls(&reply.tool_calls, "Not run: no steps are left.");
            let again = format!("No steps are left, so nothing was run. {}", final_request(limits.steps));
            conv.say(json!({"role": "user", "content": again}));
            continue;
        }
        p.step += 1;
        run_one_step(&mut p, &mut conv, StepRun::new(&task, &base, &roots), &reply, &tmp, limits);
    };
    finish_investigation(&tmp, &task, &guide, &conv, p, status, limits, investigator)
}

/// What an investigation has come to so far.
#[derive(Default)]
struct Progress {
    steps: Vec<StepEntry>,
    answer: Option<Answer>,
    scores: Json,
    /// Every answer that was sent back, with its problems.
    rejected: Vec<Json>,
    tokens: u64,
    /// Whether the model was asked for its final answer.
    asked_final: bool,
    step: usize,
}

/// The unfinished investigation folder and its empty `files/` folder (the
/// one a function task's scripts read), once the task's prelude (the
/// person's words, spliced into Assay) checks and binds in the sandbox:
/// before the model is asked anything.
fn open_investigation(
    task: &Task,
    limits: &Limits,
    out_dir: &Path,
    registry: &assay_interpreter::Registry,
) -> Result<(PathBuf, PathBuf, assay_interpreter::Lease), (u8, String)> {
    let (tmp, _, lease) = begin_run(out_dir, task.kind()).map_err(|e| {
        (crate::out::EXIT_USAGE, format!("cannot make the investigation folder under {}: {e}", out_dir.display()))
    })?;
    let files = tmp.join("files");
    let _ = std::fs::create_dir_all(&files);
    let Some((text, _)) = task.prelude() else { return Ok((tmp, files, lease)) };
    let pf = assay_interpreter::SourceFile::new("<task>", text);
    let diags = match assay_interpreter::Sandbox::new(&files, &[]) {
        Ok(sb) => assay_interpreter::prepare(&pf, registry, &sb).diags,
        Err(e) => vec![assay_interpreter::Diag::new(assay_interpreter::Code::Usage, e.to_string())],
    };
    if let Some(d) = diags.first() {
        let _ = std::fs::remove_dir_all(&tmp);
        let help = d.help.as_ref().map(|h| format!("\n  help: {h}")).unwrap_or_default();
        return Err((crate::out::EXIT_USAGE, format!("the unit cannot be bound: {}{help}", d.message)));
    }
    // And it must bind: run it once, with an empty script, in the sandbox.
    let probe = tmp.join("probe");
    let r = run_step(StepRun::new(task, &files, std::slice::from_ref(&files)), "", &probe, limits, 0);
    let _ = std::fs::remove_dir_all(&probe);
    if r.status != "ok" {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err((crate::out::EXIT_USAGE, format!("the unit cannot be bound: {}", r.feedback)));
    }
    Ok((tmp, files, lease))
}

/// An answer the model gave: scored if it passes its checks; otherwise
/// sent back with its problems while tries are left, else scored as
/// failed with the reason. The investigation's end status, or `None` to
/// go on.
fn take_answer(
    p: &mut Progress,
    conv: &mut Conversation,
    task: &Task,
    a: Answer,
    reply: &assay_stdlib::llm::Reply,
    tmp: &Path,
    limits: &Limits,
) -> Option<Ending> {
    let problems = match check_and_score(task, &a, tmp, limits) {
        Ok(s) => {
            p.answer = Some(a);
            p.scores = s;
            return Some(Ending::Answered);
        }
        Err(problems) => problems,
    };
    let tries_left = limits.answer_retries.saturating_sub(p.rejected.len());
    p.rejected.push(json!({"problems": problems.iter().map(Problem::json).collect::<Vec<_>>()}));
    if tries_left == 0 {
        // Scored as failed, and the record says why.
        let why: Vec<String> = problems.iter().map(|q| format!("[{}] {}", q.field, q.message)).collect();
        p.answer = Some(a);
        p.scores = json!({
            "solved": false,
            "failed": format!("the answer was not accepted after {} tries: {}", p.rejected.len(), why.join("; ")),
        });
        return Some(Ending::AnswerRejected);
    }
    conv.answer_calls(&reply.tool_calls, "Not run: your reply was taken as a final answer.");
    let m = json!({"role": "user", "content": correction(&problems, tries_left, task)});
    conv.say_logged(m.clone(), json!({"message": m, "answer_rejected": p.rejected.len()}));
    None
}

/// Runs the reply's script as step `p.step` (or says why none ran) and
/// sends its feedback with the images it showed; at the last step, with
/// the request for the final answer.
fn run_one_step(
    p: &mut Progress,
    conv: &mut Conversation,
    run: StepRun<'_>,
    reply: &assay_stdlib::llm::Reply,
    tmp: &Path,
    limits: &Limits,
) {
    let step = p.step;
    let mut scripts = scripts_in(&reply.text);
    for call in &reply.tool_calls {
        // A call of another name, or without a script, counts as no script.
        let script = serde_json::from_str::<Json>(&call.arguments)
            .ok()
            .and_then(|a| a["script"].as_str().map(str::to_string))
            .filter(|_| call.name == "run_assay");
        scripts.extend(script);
    }
    let dir = tmp.join("steps").join(format!("{step:02}"));
    let (feedback, step_status, shown_total) = match scripts.len() {
        1 => {
            let r = run_step(run, &scripts[0], &dir, limits, step as u64);
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
    p.steps.push(StepEntry { step, status: step_status, folder: format!("steps/{step:02}") });
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
        p.asked_final = true;
        let _ = write!(text, "\n\n{}", final_request(limits.steps));
    }
    let shown_files: Vec<String> = shown.iter().map(|(f, _)| format!("steps/{step:02}/shown/{f}")).collect();
    let text = if !limits.vision && !shown.is_empty() { format!("{text}\n{}", describe_images(&shown)) } else { text };
    let images = if limits.vision { shown } else { Vec::new() };
    conv.feedback(reply, step, &text, &images, &shown_files);
}

/// Writes the investigation's transcript, answer, report and manifest and
/// finishes its folder.
#[allow(clippy::too_many_arguments, reason = "the parts of one investigation, each used once")]
fn finish_investigation(
    tmp: &Path,
    task: &Task,
    guide: &str,
    conv: &Conversation,
    p: Progress,
    status: Ending,
    limits: &Limits,
    investigator: &dyn Investigator,
) -> Result<Outcome, (u8, String)> {
    let answer_json = json!({
        "status": status,
        "fields": p.answer.as_ref().map(|a| json!(a.fields)).unwrap_or(Json::Null),
        "scores": p.scores,
        "rejected": p.rejected,
    });
    let record = task.record();
    let task_json = serde_json::to_value(&record).unwrap_or(Json::Null);
    let write = |name: &str, text: &str| std::fs::write(tmp.join(name), text);
    let transcript_text: String = conv
        .transcript
        .iter()
        .map(|t| investigator.scrub(&serde_json::to_string(t).unwrap_or_default()) + "\n")
        .collect();
    let steps = p.steps.len();
    let manifest = InvestigationManifest {
        assay_version: assay_interpreter::ASSAY_VERSION.to_string(),
        task: record,
        model: investigator.name(),
        endpoint: investigator.endpoint(),
        steps: p.steps,
        status,
        tokens: p.tokens,
        guide_sha256: hex::encode(sha2::Sha256::digest(guide.as_bytes())),
        limits: LimitsRecord {
            steps: limits.steps,
            memory: limits.budget.memory,
            step_timeout_seconds: limits.budget.timeout.as_secs_f64(),
            reply_chars: limits.reply_chars,
        },
        other: Default::default(),
    };
    let report = report_html(&task_json, &conv.transcript, &answer_json);
    let written = write("transcript.jsonl", &transcript_text)
        .and_then(|_| write("answer.json", &canonical(&answer_json)))
        .and_then(|_| write("report.html", &report))
        .and_then(|_| write("manifest.json", &manifest.to_json()));
    let dir = written
        .and_then(|_| finish_run(tmp))
        .map_err(|e| (crate::out::EXIT_SCRIPT, format!("cannot finish the investigation folder: {e}")))?;
    Ok(Outcome { dir, answer: answer_json, status, steps })
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
