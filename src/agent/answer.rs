//! The final answer: read from a reply, checked field by field in the
//! sandbox before it is accepted, then scored. A field that is missing,
//! given twice, malformed, or whose expression does not check, fails or
//! gives the wrong kind of value is a `Problem` the model is told about
//! (and may answer again, within its answer budget); only a checked answer
//! is scored, so a correct description is never scored as broken.

use std::collections::BTreeMap;
use std::path::Path;

use assay_interpreter::read_regular;
use serde_json::{json, Value as Json};

use super::domain::{self, Domain};
use super::{elide, run_step, FnSpec, Limits, StepRun, Task};

/// A parsed final answer.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Answer {
    pub fields: BTreeMap<String, String>,
    /// Fields given more than once (the answer is ambiguous).
    pub repeated: Vec<String>,
}

impl Answer {
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.fields.get(k).map(String::as_str)
    }
}

/// `[DESCRIPTION]: ...` style fields; a field runs to the next `[FIELD]`
/// at the start of a line (outside code fences).
pub(crate) fn parse_answer(reply: &str) -> Option<Answer> {
    let mut fields = BTreeMap::new();
    let mut repeated = Vec::new();
    let mut current: Option<(String, String)> = None;
    let mut in_fence = false;
    let mut close = |cur: Option<(String, String)>, fields: &mut BTreeMap<String, String>| {
        if let Some((k, v)) = cur {
            if fields.insert(k.clone(), v.trim().to_string()).is_some() && !repeated.contains(&k) {
                repeated.push(k);
            }
        }
    };
    for line in reply.lines() {
        let t = line.trim_start();
        let field =
            (!in_fence).then(|| t.strip_prefix('[').and_then(|r| r.split_once(']'))).flatten().filter(|(name, _)| {
                !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_uppercase() || c == ' ' || c.is_ascii_digit())
                    && name.chars().any(|c| c.is_ascii_uppercase())
            });
        if t.starts_with("```") {
            in_fence = !in_fence || t.trim() != "```";
        }
        if let Some((name, rest)) = field {
            close(current.take(), &mut fields);
            let rest = rest.trim_start_matches(':').trim();
            // `[CODE]: ```assay` opens a fence on the field's own line.
            in_fence = rest.starts_with("```") && rest.matches("```").count() % 2 == 1;
            current = Some((name.to_string(), rest.to_string()));
        } else if let Some((_, v)) = current.as_mut() {
            v.push('\n');
            v.push_str(line);
        }
    }
    close(current, &mut fields);
    let has_final = fields.contains_key("DESCRIPTION") || fields.contains_key("ANSWER");
    has_final.then_some(Answer { fields, repeated })
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

/// What is wrong with one field of an answer, in words for the model.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Problem {
    pub field: String,
    pub message: String,
}

impl Problem {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Problem { field: field.to_string(), message: message.into() }
    }

    pub(crate) fn json(&self) -> Json {
        json!({"field": self.field, "problem": self.message})
    }
}

/// The one message that sends an answer's problems back to the model.
pub(crate) fn correction(problems: &[Problem], tries_left: usize, task: &Task) -> String {
    let mut out = String::from("Your final answer was not accepted:\n");
    for p in problems {
        out.push_str(&format!("- [{}]: {}\n", p.field, p.message));
    }
    out.push_str(&format!(
        "\nSend the whole answer again, every field, in this form:\n{}\nYou may answer {tries_left} more time(s); an answer that still has a problem then is scored as failed.",
        task.answer_form()
    ));
    out
}

/// A field's expression or code: its one fenced block, or the text inside
/// the backticks that open it (a model copies the guide's `code` style;
/// text after the closing backticks is an explanation), or the whole field.
pub(crate) fn expression(field: &str, name: &str) -> Result<String, Problem> {
    let blocks = scripts_in(field);
    let text = match blocks.len() {
        1 => blocks[0].trim().to_string(),
        0 => {
            let t = field.trim();
            let ticks = t.chars().take_while(|c| *c == '`').count();
            if ticks > 0 {
                let fence = "`".repeat(ticks);
                let inner = &t[ticks..];
                match inner.find(&fence) {
                    Some(end) => inner[..end].trim().to_string(),
                    None => inner.trim().to_string(),
                }
            } else {
                t.to_string()
            }
        }
        n => {
            return Err(Problem::new(
                name,
                format!("it has {n} code blocks; give one {} (in one block, or with no backticks)", what(name)),
            ))
        }
    };
    if text.is_empty() {
        return Err(Problem::new(name, format!("it is empty; give {}", what(name))));
    }
    Ok(text)
}

fn what(field: &str) -> &'static str {
    match field {
        "CODE" => "definition of `fn f`",
        _ => "Assay expression for a list of stimuli",
    }
}

/// Fields the task's answer must have.
fn required(task: &Task) -> &'static [&'static str] {
    match task {
        Task::Function { spec: FnSpec { strings: Some(_), .. }, .. } => &["DESCRIPTION", "CODE"],
        Task::Function { .. } => &["DESCRIPTION", "DOMAIN", "CODE"],
        Task::Unit { .. } | Task::ModelUnit { .. } => &["DESCRIPTION", "LABEL", "POSITIVE", "NEGATIVE"],
        Task::Question { .. } => &["ANSWER"],
    }
}

/// The problems that need no run: missing, repeated and empty fields, and
/// a `[DOMAIN]` outside its grammar.
fn form_problems(task: &Task, answer: &Answer) -> Vec<Problem> {
    let mut out = Vec::new();
    for f in required(task) {
        match answer.get(f) {
            None => out.push(Problem::new(f, "it is missing")),
            Some(v) if v.trim().is_empty() => out.push(Problem::new(f, "it is empty")),
            Some(_) => {}
        }
    }
    for f in &answer.repeated {
        out.push(Problem::new(f, "it is given more than once; give each field once"));
    }
    if required(task).contains(&"DOMAIN") {
        if let Some(Err(e)) = answer.get("DOMAIN").filter(|d| !d.trim().is_empty()).map(domain::parse) {
            out.push(Problem::new("DOMAIN", e.trim_start_matches("[DOMAIN] ").to_string()));
        }
    }
    out
}

/// Checks an answer and, if it holds, scores it. `Err` lists every
/// problem found; nothing is scored then.
pub(crate) fn check_and_score(task: &Task, answer: &Answer, dir: &Path, limits: &Limits) -> Result<Json, Vec<Problem>> {
    let mut problems = form_problems(task, answer);
    match task {
        Task::Function { .. } => {
            // The code is checked (and run) even when other fields have problems.
            let code = answer.get("CODE").filter(|c| !c.trim().is_empty()).map(|c| expression(c, "CODE"));
            let prediction = match code {
                Some(Ok(code)) => match predict(task, &code, dir, limits) {
                    Ok(p) => Some(p),
                    Err(p) => {
                        problems.push(p);
                        None
                    }
                },
                Some(Err(p)) => {
                    problems.push(p);
                    None
                }
                None => None,
            };
            match prediction {
                Some(p) if problems.is_empty() => Ok(score_function(task, answer, &p, dir, limits)),
                _ => Err(problems),
            }
        }
        Task::Unit { .. } | Task::ModelUnit { .. } => {
            let pos = answer.get("POSITIVE").filter(|c| !c.trim().is_empty()).map(|c| expression(c, "POSITIVE"));
            let neg = answer.get("NEGATIVE").filter(|c| !c.trim().is_empty()).map(|c| expression(c, "NEGATIVE"));
            for e in [&pos, &neg] {
                if let Some(Err(p)) = e {
                    problems.push(p.clone());
                }
            }
            let (Some(Ok(pos)), Some(Ok(neg))) = (pos, neg) else { return Err(problems) };
            match score_unit(task, &pos, &neg, dir, limits) {
                Ok(s) if problems.is_empty() => Ok(s),
                Ok(_) => Err(problems),
                Err(mut p) => {
                    problems.append(&mut p);
                    Err(problems)
                }
            }
        }
        Task::Question { .. } if problems.is_empty() => Ok(Json::Null),
        Task::Question { .. } => Err(problems),
    }
}

/// The points a numeric answer is scored on: FIND's x = i + 0.5.
const POINTS: &str = "map(0..256, i => i - 128 + 0.5)";

/// The name the truth's `fn f` is renamed to beside the scoring script.
const TRUTH_FN: &str = "truth_of_the_box";

/// The scratch folder a scoring or checking run writes into (replaced each time).
fn scratch(dir: &Path, name: &str) -> std::path::PathBuf {
    let s = dir.join(name);
    let _ = std::fs::remove_dir_all(&s);
    s
}

/// Runs the answer's code alone (no black box bound: the code must stand
/// on its own) on the scoring inputs; its outputs, or the problem.
fn predict(task: &Task, code: &str, dir: &Path, limits: &Limits) -> Result<Vec<Json>, Problem> {
    let Task::Function { spec, .. } = task else { return Err(Problem::new("CODE", "not a function task")) };
    if !defines_f(code) {
        return Err(Problem::new(
            "CODE",
            "it does not define `fn f`: give one Assay function `fn f(x) { ... }` (the black box is not available to it)",
        ));
    }
    let inputs = match &spec.strings {
        Some(inputs) => serde_json::to_string(inputs).unwrap_or_default(),
        None => POINTS.to_string(),
    };
    let script = format!("{code}\nrecord \"prediction\", map({inputs}, x => f(x))\n");
    let base = dir.join("files");
    let out = scratch(dir, "check");
    let r = run_step(
        StepRun { bind_box: false, ..StepRun::new(task, &base, std::slice::from_ref(&base)) },
        &script,
        &out,
        limits,
        0,
    );
    if r.status != "ok" {
        let hint = if mentions_box(code) {
            " (the answer's code runs without the black box: `box` is not defined there; write the function itself)"
        } else {
            ""
        };
        // The first diagnostic says what went wrong; the chain of calls
        // after it is the harness's own lines.
        let detail = match r.diagnostics.first() {
            Some(d) => {
                let mut m = d["message"].as_str().unwrap_or("it failed").to_string();
                let line = d["line"].as_u64().unwrap_or(0) as usize;
                if let Some(text) = code.lines().nth(line.wrapping_sub(1)).filter(|_| line >= 1) {
                    m.push_str(&format!(" (line {line} of the code: `{}`)", text.trim()));
                }
                if let Some(h) = d["help"].as_str() {
                    m.push_str(&format!("; help: {h}"));
                }
                m
            }
            None => elide(&r.feedback, 1500),
        };
        return Err(Problem::new("CODE", format!("it did not run on the scoring inputs{hint}: {detail}")));
    }
    let results = read_results(&out);
    let Some(values) = results["records"]["prediction"].as_array().cloned() else {
        return Err(Problem::new("CODE", "it recorded no outputs"));
    };
    if spec.strings.is_none() {
        let bad = values
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_number() || matches!(v.as_str(), Some("nan" | "inf" | "-inf"))));
        if let Some((i, v)) = bad {
            return Err(Problem::new(
                "CODE",
                format!(
                    "f({}) gave {v}, not a number: `f` must return a number for every x in [-128, 128]",
                    i as f64 - 127.5
                ),
            ));
        }
    }
    Ok(values)
}

/// Whether code defines `fn f(`.
fn defines_f(code: &str) -> bool {
    code.lines().any(|l| {
        let t = l.trim_start();
        t.strip_prefix("fn").is_some_and(|r| {
            r.starts_with(char::is_whitespace)
                && r.trim_start().strip_prefix('f').is_some_and(|r| r.trim_start().starts_with('('))
        })
    })
}

fn mentions_box(code: &str) -> bool {
    code.match_indices("box.").any(|(i, _)| !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
}

fn read_results(dir: &Path) -> Json {
    read_regular(&dir.join("results.json"), 64 << 20)
        .ok()
        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
        .unwrap_or(Json::Null)
}

/// Scores a checked black-box function answer as FIND does. Numbers: the
/// answer's outputs against the truth (the box, or the benchmark's clean
/// function) at x = i + 0.5, i in -128..127; NMSE = Σ(truth − prediction)²
/// / Σ truth² over the points where the truth is finite; solved below 0.1.
/// Strings: the fraction of test inputs on which the answer gives exactly
/// the box's output. `[DOMAIN]` is scored against a known corrupted interval.
fn score_function(task: &Task, answer: &Answer, prediction: &[Json], dir: &Path, limits: &Limits) -> Json {
    let Task::Function { name, spec, .. } = task else { return Json::Null };
    let script = match (&spec.strings, &spec.truth) {
        (Some(inputs), _) => format!(
            "record \"truth\", map({}, s => box.{name}(s))\n",
            serde_json::to_string(inputs).unwrap_or_default()
        ),
        (None, Some(t)) => format!(
            "{}\nrecord \"truth\", map({POINTS}, x => {TRUTH_FN}(x))\n",
            t.replacen("fn f(", &format!("fn {TRUTH_FN}("), 1)
        ),
        (None, None) => format!("record \"truth\", map({POINTS}, x => box.{name}(x))\n"),
    };
    let base = dir.join("files");
    let out = scratch(dir, "score");
    let r = run_step(StepRun::new(task, &base, std::slice::from_ref(&base)), &script, &out, limits, 0);
    let truth = read_results(&out)["records"]["truth"].as_array().cloned();
    let Some(truth) = truth.filter(|t| r.status == "ok" && t.len() == prediction.len()) else {
        // The truth is Assay's own: a failure here is the harness's, said as such.
        return json!({"solved": false, "error": format!("the truth could not be computed: {}", elide(&r.feedback, 1000))});
    };
    if spec.strings.is_some() {
        let right = truth.iter().zip(prediction).filter(|(a, b)| a == b).count();
        let first_wrong = truth.iter().zip(prediction).position(|(a, b)| a != b);
        let mut s = json!({"accuracy": right as f64 / truth.len().max(1) as f64, "solved": right == truth.len(), "inputs": truth.len()});
        if let (Some(i), Some(inputs)) = (first_wrong, &spec.strings) {
            s["failed"] =
                json!(format!("{} of {} inputs differ, first f({:?})", truth.len() - right, truth.len(), inputs[i]));
        }
        return s;
    }
    let num = |v: &Json| match v {
        Json::String(s) if s == "inf" => f64::INFINITY,
        Json::String(s) if s == "-inf" => f64::NEG_INFINITY,
        v => v.as_f64().unwrap_or(f64::NAN),
    };
    let t: Vec<f64> = truth.iter().map(num).collect();
    let p: Vec<f64> = prediction.iter().map(num).collect();
    let n = nmse(&t, &p);
    let mut scores = json!({"nmse": assay_interpreter::num_json(n), "solved": n.is_finite() && n < 0.1});
    if !(n.is_finite() && n < 0.1) {
        scores["failed"] = json!(format!("NMSE {} is not below 0.1", assay_interpreter::num_json(n)));
    }
    if spec.domain_scored {
        let answered = answer.get("DOMAIN").map(domain::parse);
        let iou = match (answered, spec.interval) {
            (Some(Ok(Domain::None)), None) => 1.0,
            (Some(Ok(Domain::Interval(lo, hi))), Some(t)) => domain::interval_iou((lo, hi), t),
            _ => 0.0,
        };
        scores["domain_iou"] = json!(iou);
        scores["domain_correct"] = json!(iou >= 0.5);
        if iou < 0.5 {
            let truth = match spec.interval {
                Some((lo, hi)) => format!("[{lo}, {hi}]"),
                None => "none".to_string(),
            };
            let why = format!("domain IoU {iou:.2} is below 0.5 (the truth is {truth})");
            scores["failed"] = json!(match scores["failed"].as_str() {
                Some(f) => format!("{f}; {why}"),
                None => why,
            });
        }
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

/// The answer's predicted stimuli scored on the unit as `score` does (ROC
/// AUC of positives over negatives), in the sandbox with the unit bound. A
/// failure is blamed on the field whose expression it came from.
fn score_unit(task: &Task, pos: &str, neg: &str, dir: &Path, limits: &Limits) -> Result<Json, Vec<Problem>> {
    let head_p = "let positives = ";
    let head_n = "\nlet negatives = ";
    let script = format!("{head_p}{pos}{head_n}{neg}\nrecord \"score\", score(unit, positives, negatives)\n");
    let pos_range = head_p.len()..head_p.len() + pos.len();
    let neg_start = pos_range.end + head_n.len();
    let neg_range = neg_start..neg_start + neg.len();
    let call_start = neg_range.end;
    let base = dir.join("files");
    let out = scratch(dir, "score");
    let r = run_step(StepRun::new(task, &base, std::slice::from_ref(&base)), &script, &out, limits, 0);
    let results = read_results(&out);
    if let (Json::Object(s), "ok") = (&results["records"]["score"], r.status.as_str()) {
        return Ok(Json::Object(s.clone()));
    }
    // Blame each diagnostic on the field its span lies in (or, in the
    // scoring call, on the argument it names).
    let mut problems: Vec<Problem> = Vec::new();
    for d in &r.diagnostics {
        let start = d["span"]["start"].as_u64().map(|s| s as usize);
        let end = d["span"]["end"].as_u64().map(|s| s as usize).unwrap_or(0);
        let named = start.and_then(|s| script.get(s..end.max(s))).unwrap_or("");
        let fields: Vec<&str> = match start {
            Some(s) if pos_range.contains(&s) => vec!["POSITIVE"],
            Some(s) if neg_range.contains(&s) => vec!["NEGATIVE"],
            Some(s) if s >= call_start && named == "positives" => vec!["POSITIVE"],
            Some(s) if s >= call_start && named == "negatives" => vec!["NEGATIVE"],
            _ => vec!["POSITIVE", "NEGATIVE"],
        };
        let mut message = d["message"].as_str().unwrap_or("it failed").to_string();
        if let Some(h) = d["help"].as_str() {
            message.push_str(&format!(" (help: {h})"));
        }
        if let (Some(s), Some(excerpt)) = (start, start.and_then(|s| script.get(s..end.max(s)))) {
            if !excerpt.is_empty() && !matches!(excerpt, "positives" | "negatives") && s < call_start {
                message.push_str(&format!(" at `{}`", elide(excerpt, 80)));
            }
        }
        for f in fields {
            problems.push(Problem::new(
                f,
                format!("scoring it with `score(unit, positives, negatives)` failed: {message}"),
            ));
        }
    }
    if problems.is_empty() {
        let msg = format!("scoring the stimuli failed: {}", elide(&r.feedback, 1500));
        problems.push(Problem::new("POSITIVE", msg.clone()));
        problems.push(Problem::new("NEGATIVE", msg));
    }
    Err(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn a_fence_opened_on_the_field_line_closes_before_the_next_field() {
        let r = "[DESCRIPTION]: d\n[CODE]: ```assay\nfn f(x) {\n  return x\n}\n```\n[DOMAIN]: none\n";
        let a = parse_answer(r).expect("an answer");
        assert_eq!(a.get("DOMAIN"), Some("none"), "{a:?}");
        assert_eq!(expression(a.get("CODE").unwrap_or(""), "CODE"), Ok("fn f(x) {\n  return x\n}".to_string()));
    }

    #[test]
    fn a_field_marker_inside_code_is_code_and_a_repeated_field_is_named() {
        let r = "[DESCRIPTION]: d\n[CODE]:\n```assay\nfn f(x) {\n  let xs = [x]\n[X]\n  return x\n}\n```\n[DESCRIPTION]: again";
        let a = parse_answer(r).expect("an answer");
        assert!(a.get("CODE").is_some_and(|c| c.contains("[X]")), "{a:?}");
        assert_eq!(a.repeated, vec!["DESCRIPTION".to_string()]);
    }

    #[test]
    fn expressions_are_read_from_backticks_fences_or_bare_text() {
        // The transcripts' form: the expression wrapped in backticks.
        assert_eq!(expression("`[1, 2]`", "POSITIVE"), Ok("[1, 2]".to_string()));
        assert_eq!(expression("``[\"a`b\"]`` (texts with a backtick)", "POSITIVE"), Ok("[\"a`b\"]".to_string()));
        assert_eq!(expression("```assay\n[1,\n 2]\n```", "POSITIVE"), Ok("[1,\n 2]".to_string()));
        assert_eq!(expression("  [svg(\"<svg/>\")] ", "POSITIVE"), Ok("[svg(\"<svg/>\")]".to_string()));
        assert!(expression("``", "NEGATIVE").is_err());
        let two = expression("```\n[1]\n```\n```\n[2]\n```", "POSITIVE").expect_err("two blocks");
        assert!(two.message.contains("2 code blocks"), "{two:?}");
    }

    #[test]
    fn the_code_must_define_f_without_the_box() {
        assert!(defines_f("fn f(x) {\n  return x\n}"));
        assert!(defines_f("fn helper(y) { return y }\nfn  f (s) { return s }"));
        assert!(!defines_f("fn g(x) { return x }"));
        assert!(!defines_f("fn fx(x) { return x }"));
        assert!(mentions_box("fn f(x) { return box.f(x) }"));
        assert!(!mentions_box("fn f(x) { return checkbox.f(x) }"));
    }

    #[test]
    fn nmse_follows_its_definition() {
        assert_eq!(nmse(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert_eq!(nmse(&[1.0, 1.0], &[0.0, 0.0]), 1.0);
        // Points where the truth is not finite are skipped; a non-finite
        // prediction where it is finite is infinitely wrong.
        assert_eq!(nmse(&[f64::NAN, 2.0], &[5.0, 2.0]), 0.0);
        assert_eq!(nmse(&[1.0], &[f64::NAN]), f64::INFINITY);
        assert_eq!(nmse(&[0.0], &[0.0]), 0.0);
        assert_eq!(nmse(&[0.0], &[1.0]), f64::INFINITY);
    }
}
