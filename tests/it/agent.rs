//! `assay agent` against a scripted model. No hosted language model can
//! exist in these tests, so a test double stands in for it: a real HTTP
//! server on loopback that speaks the OpenAI chat-completions protocol and
//! answers each request with the next scripted reply (or fault), recording
//! what it was sent. Everything else is real: the checker, the sandboxed
//! child runs, the investigation folder, scoring and replay.

use std::path::Path;

use serde_json::{json, Value as Json};

use crate::scripted::{call, fault, say, scripted, Scripted, Turn};
use crate::support::{temp_with, Test};

const BOX: &str = "// SECRET-MARKER: the truth is 3x - 2\nfn f(x) { 3.0 * x - 2.0 }\n";

pub(crate) fn agent(dir: &Path, model: &Scripted, args: &[&str]) -> crate::support::Output {
    Test::new(dir)
        .arg("agent")
        .args(args)
        .args(["--retry-wait", "10ms", "--attempts", "3", "--json"])
        .env("ASSAY_AGENT_URL", &model.url)
        .env("ASSAY_AGENT_MODEL", "scripted")
        .env("ASSAY_AGENT_KEY", "sk-agent-secret")
        // No describer unless a test sets one.
        .env("ASSAY_LLM_URL", "")
        // Every call is stored however fast it ran, so that a replay's
        // cache hits do not depend on the machine's speed.
        .env("ASSAY_CACHE_MIN_SECONDS", "0")
        .run()
}

/// The text of the last message of request `k` the model was sent.
fn sent(model: &Scripted, k: usize) -> String {
    let reqs = model.requests.lock().unwrap();
    let last = reqs[k].1["messages"].as_array().unwrap().last().unwrap().clone();
    last["content"].as_str().unwrap_or_default().to_string()
}

/// The investigation folder (printed relative to where the agent ran).
fn folder(work: &Path, out: &crate::support::Output) -> std::path::PathBuf {
    work.join(out.json()["folder"].as_str().expect("folder"))
}

fn read_json(p: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The box lives outside the folder the agent runs in.
fn setup() -> (tempfile::TempDir, tempfile::TempDir) {
    let boxes = temp_with(&[("box.rhai", BOX)]);
    let work = temp_with(&[]);
    (boxes, work)
}

#[test]
fn a_scripted_model_solves_a_find_function_and_the_investigation_replays() {
    let (boxes, work) = setup();
    let model = scripted(vec![
        say("Let me probe it.\n```assay\nlet xs=[0,1,2,10]\nshow \"ys\", map(xs, x => box.f(x))\nrecord \"ys\",map(xs,x=>box.f(x))\n```\n"),
        say("It is linear.\n[DESCRIPTION]: a line, 3x - 2\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return 3 * x - 2\n}\n```\n"),
    ]);
    let box_path = boxes.path().join("box.rhai");
    let out = agent(work.path(), &model, &["function", box_path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["answer"]["status"], "answered");
    assert_eq!(j["answer"]["scores"]["nmse"], 0, "{j}");
    assert_eq!(j["answer"]["scores"]["solved"], true);
    let dir = folder(work.path(), &out);
    let step = read_json(&dir.join("steps/01/results.json"));
    assert_eq!(step["records"]["ys"], json!([-2, 1, 4, 28]));
    // The step is kept in the canonical layout (assay fmt), line for line.
    let kept = std::fs::read_to_string(dir.join("steps/01/script.assay")).unwrap();
    assert_eq!(
        kept,
        "let xs = [0, 1, 2, 10]\nshow \"ys\", map(xs, x => box.f(x))\nrecord \"ys\", map(xs, x => box.f(x))\n"
    );
    // What the model was sent: the generated guide as the system prompt, the
    // key in the header, the step's output in the next user message.
    let reqs = model.requests.lock().unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].0.to_ascii_lowercase(), "authorization: bearer sk-agent-secret");
    // The function task's part of the guide: its tools and answer format.
    let guide = Test::new(work.path()).args(["agent", "guide", "--task", "function"]).run().stdout;
    assert_eq!(reqs[0].1["messages"][0]["content"], guide.as_str());
    // The task says the box may be deterministic, its noise a function of x.
    let task = reqs[0].1["messages"][1]["content"].as_str().unwrap_or("");
    assert!(task.contains("deterministic") && task.contains("fixed function of x"), "{task}");
    assert!(guide.contains("[CODE]") && !guide.contains("[POSITIVE]") && !guide.contains("exemplars("), "{guide}");
    let feedback = reqs[1].1["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    assert!(feedback.contains("[-2, 1, 4, 28]"), "{feedback}");
    // Nothing of the box's source or the key is in the folder.
    for f in ["transcript.jsonl", "answer.json", "report.html", "manifest.json"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(!text.contains("SECRET-MARKER") && !text.contains("sk-agent-secret"), "{f} leaks");
    }
    // Replay without the model: every step byte-identical.
    let r = Test::new(work.path()).args(["agent", "replay", dir.to_str().unwrap(), "--json"]).run();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["replayed"], 1);
    // A tampered step is named.
    let res = dir.join("steps/01/results.json");
    std::fs::write(&res, std::fs::read_to_string(&res).unwrap().replace("28", "29")).unwrap();
    let r = Test::new(work.path()).args(["agent", "replay", dir.to_str().unwrap(), "--json"]).run();
    assert_eq!(r.code, 3);
    assert_eq!(r.json()["first_difference"], "01");
}

#[test]
fn a_wrong_answer_is_scored_unsolved_with_the_check_that_failed() {
    let (boxes, work) = setup();
    let box_path = boxes.path().join("box.rhai");
    let model =
        scripted(vec![say("[DESCRIPTION]: zero\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return 0\n}\n```\n")]);
    let out = agent(work.path(), &model, &["function", box_path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let s = &out.json()["answer"]["scores"];
    assert_eq!((s["solved"].as_bool(), s["nmse"].as_f64()), (Some(false), Some(1.0)), "{s}");
    assert!(s["failed"].as_str().is_some_and(|f| f.contains("NMSE 1 is not below 0.1")), "{s}");
}

/// Modelled on the transcripts: an answer whose code fails, then one whose
/// [DOMAIN] is outside the grammar, then a right one. Each problem goes
/// back to the model naming the field and the expected form; none is a step.
#[test]
fn an_answer_that_fails_its_check_is_sent_back_and_the_corrected_one_scored() {
    let (boxes, work) = setup();
    let box_path = boxes.path().join("box.rhai");
    let model = scripted(vec![
        say("[DESCRIPTION]: a line\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return 3 * x - \"2\"\n}\n```\n"),
        say("[DESCRIPTION]: a line\n[DOMAIN]: between 3 and 5\n[CODE]:\n```assay\nfn f(x) {\n  return 3 * x - 2\n}\n```\n"),
        say("[DESCRIPTION]: a line\n[DOMAIN]: none (it is the same line over the whole [−128, 128])\n[CODE]:\n```assay\nfn f(x) {\n  return 3 * x - 2\n}\n```\n"),
    ]);
    let out = agent(work.path(), &model, &["function", box_path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["answer"]["status"], "answered", "{j}");
    assert_eq!(j["answer"]["scores"]["solved"], true, "{j}");
    assert_eq!(j["answer"]["rejected"].as_array().map(Vec::len), Some(2), "{j}");
    assert_eq!(model.requests.lock().unwrap().len(), 3);
    let last = |k: usize| sent(&model, k);
    let first = last(1);
    assert!(first.contains("not accepted") && first.contains("- [CODE]: it did not run"), "{first}");
    assert!(first.contains("2 more time(s)") && first.contains("[DOMAIN]: one of `none`"), "{first}");
    let second = last(2);
    assert!(second.contains("- [DOMAIN]: must start with `none`") && second.contains("`between 3 and 5`"), "{second}");
    assert!(!second.contains("- [CODE]"), "only the domain was wrong: {second}");
    assert!(second.contains("1 more time(s)"), "{second}");
    // Answers are not steps.
    let m = read_json(&folder(work.path(), &out).join("manifest.json"));
    assert_eq!(m["steps"].as_array().map(Vec::len), Some(0), "{m}");
}

#[test]
fn an_answer_still_wrong_when_the_answer_budget_is_spent_scores_as_failed_and_says_why() {
    let (boxes, work) = setup();
    let box_path = boxes.path().join("box.rhai");
    let model = scripted(vec![say(
        "[DESCRIPTION]: the box\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return box.f(x)\n}\n```\n",
    )]);
    let out = agent(work.path(), &model, &["function", box_path.to_str().unwrap(), "--answer-retries", "0"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let a = &out.json()["answer"];
    assert_eq!(a["status"], "answer-rejected", "{a}");
    assert_eq!(a["scores"]["solved"], false, "{a}");
    let why = a["scores"]["failed"].as_str().unwrap_or("");
    assert!(why.contains("[CODE]") && why.contains("without the black box"), "{why}");
}

#[test]
fn an_image_unit_answer_with_a_list_of_the_wrong_kind_is_sent_back() {
    let work = temp_with(&[]);
    let bars = |r: u32| {
        format!("svg(\"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 20 20'><rect x='8' y='2' width='4' height='16' fill='black' transform='rotate({r} 10 10)'/></svg>\")")
    };
    let model = scripted(vec![
        say("[DESCRIPTION]: vertical bars\n[LABEL]: vertical\n[POSITIVE]: `[\"a vertical bar\"]`\n[NEGATIVE]: `[1, 2]`\n"),
        say(&format!(
            "[DESCRIPTION]: vertical bars\n[LABEL]: vertical\n[POSITIVE]: `[{}, {}]`\n[NEGATIVE]: `[{}, {}]`\n",
            bars(0),
            bars(5),
            bars(90),
            bars(80)
        )),
    ]);
    let out = agent(work.path(), &model, &["unit", "--synthetic", "vertical"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let a = &out.json()["answer"];
    assert_eq!(a["scores"]["score"], 1, "{a}");
    let problems = a["rejected"][0]["problems"].as_array().cloned().unwrap_or_default();
    assert!(problems.iter().any(|p| p["field"] == "NEGATIVE"), "{problems:?}");
    let fb = sent(&model, 1);
    assert!(fb.contains("- [NEGATIVE]:") && fb.contains("no backticks"), "{fb}");
}

/// The feedback a function task's model gets for one step of `script`
/// (at most 300 characters of it), and the investigation's output.
fn feedback_on(script: &str) -> (tempfile::TempDir, crate::support::Output, String) {
    let (boxes, work) = setup();
    let model = scripted(vec![
        say(&format!("```assay\n{script}\n```")),
        say("[DESCRIPTION]: a line\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return 3 * x - 2\n}\n```"),
    ]);
    let out = agent(
        work.path(),
        &model,
        &["function", boxes.path().join("box.rhai").to_str().unwrap(), "--reply-chars", "300"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let fb = sent(&model, 1);
    (work, out, fb)
}

#[test]
fn feedback_reads_floats_at_a_readable_precision_and_says_how_to_see_what_was_cut() {
    let (work, out, fb) =
        feedback_on("show \"sum\", 0.1 + 0.2\nrecord \"exact\", 0.1 + 0.2\nshow \"many\", range(0, 400)");
    assert!(fb.contains("0.3") && !fb.contains("0.30000000000000004"), "{fb}");
    assert!(fb.contains("... 380 more"), "{fb}");
    // The record keeps the exact value.
    let step = read_json(&folder(work.path(), &out).join("steps/01/results.json"));
    assert_eq!(step["records"]["exact"].as_f64(), Some(0.1 + 0.2));
    // Cut output says how much and how to see the rest.
    let (_, _, fb) = feedback_on("for i in range(0, 40) {\n  show \"row {i}\", range(0, 15)\n}");
    assert!(fb.contains("more characters elided") && fb.contains("slice"), "{fb}");
}

#[test]
fn a_vision_model_is_told_how_many_shown_images_were_left_out() {
    let work = temp_with(&[]);
    let model = scripted(vec![
        say("```assay\nshow \"bars\", map(range(0, 18), r => svg(\"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 20 20'><rect x='8' y='2' width='4' height='16' transform='rotate({r * 10} 10 10)'/></svg>\"))\n```"),
        say("[DESCRIPTION]: vertical bars\n[LABEL]: vertical\n[POSITIVE]: [svg(\"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 20 20'><rect x='8' y='2' width='4' height='16'/></svg>\")]\n[NEGATIVE]: [svg(\"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 20 20'><rect x='2' y='8' width='16' height='4'/></svg>\")]\n"),
    ]);
    let out = agent(work.path(), &model, &["unit", "--synthetic", "vertical", "--vision", "--steps", "1"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let reqs = model.requests.lock().unwrap();
    let last = reqs[1].1["messages"].as_array().unwrap().last().unwrap().clone();
    let parts = last["content"].as_array().cloned().unwrap_or_default();
    let text = parts[0]["text"].as_str().unwrap_or("");
    assert!(text.contains("showed 18 images") && text.contains("2 left out"), "{text}");
    // The one step was the last: the request for the answer carries its images.
    assert!(text.contains("used all 1 steps"), "{text}");
    assert_eq!(parts.iter().filter(|p| p["type"] == "image_url").count(), 16);
}

#[test]
fn faults_are_retried_and_malformed_replies_get_a_correction() {
    let (boxes, work) = setup();
    let model = scripted(vec![
        fault(429, Some("0")),
        fault(503, None),
        say("I will think first."),
        say("```assay\nshow box.f(1)\n```\n```assay\nshow box.f(2)\n```"),
        say("[DESCRIPTION]: a line\n[DOMAIN]: none\n"),
        say("[DESCRIPTION]: a line\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return 3 * x - 2\n}\n```"),
    ]);
    let out = agent(work.path(), &model, &["function", boxes.path().join("box.rhai").to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let dir = folder(work.path(), &out);
    let m = read_json(&dir.join("manifest.json"));
    let statuses: Vec<&str> = m["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["no-script", "several-scripts"]);
    let transcript = std::fs::read_to_string(dir.join("transcript.jsonl")).unwrap();
    assert!(transcript.contains("- [CODE]: it is missing"), "the answer without [CODE] was sent back");
    assert!(transcript.contains("\"attempts\":3"), "the first reply took three attempts");
    assert!(transcript.contains("exactly one"));
    assert_eq!(out.json()["answer"]["scores"]["solved"], true);
}

#[test]
fn an_endpoint_that_keeps_failing_ends_the_investigation_keeping_its_steps() {
    let (boxes, work) = setup();
    let model = scripted(vec![say("```assay\nrecord \"y\", box.f(2)\n```")]);
    let out = agent(work.path(), &model, &["function", boxes.path().join("box.rhai").to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.json()["answer"]["status"], "endpoint-failed");
    let dir = folder(work.path(), &out);
    assert_eq!(read_json(&dir.join("steps/01/results.json"))["records"]["y"], 4);
    let t = std::fs::read_to_string(dir.join("transcript.jsonl")).unwrap();
    assert!(t.contains("did not answer after 3 attempts"), "{t}");
}

#[test]
fn a_hostile_model_is_refused_and_every_attempt_recorded() {
    let (boxes, work) = setup();
    let box_path = boxes.path().join("box.rhai");
    let model = scripted(vec![
        say(&format!("```assay\nrecord \"src\", read_text(\"{}\")\n```", box_path.display())),
        say("```assay\nrecord \"env\", read_text(\"/proc/self/environ\")\n```"),
        say("```assay\nuse \"../box.rhai\" as b\nrecord \"x\", 1\n```"),
        say("```assay\nlet s = [zeros([10000, 10000])]\nfor i in 0..10 {\n  s = s + [zeros([10000, 10000])]\n}\n```"),
        say("```assay\nrecord \"e\", box.f(\"not a number\")\n```"),
        say("[DESCRIPTION]: unknown\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return x\n}\n```"),
    ]);
    let out =
        agent(work.path(), &model, &["function", box_path.to_str().unwrap(), "--memory", "512M", "--timeout", "60s"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let dir = folder(work.path(), &out);
    let m = read_json(&dir.join("manifest.json"));
    let statuses: Vec<&str> = m["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["error", "error", "check-failed", "error", "error"], "{m}");
    let mem = read_json(&dir.join("steps/04/results.json"));
    assert_eq!(mem["error"]["code"], "assay::budget-memory", "{mem}");
    let transcript = std::fs::read_to_string(dir.join("transcript.jsonl")).unwrap();
    assert!(transcript.contains("outside the folders"), "{transcript}");
    for secret in ["SECRET-MARKER", "sk-agent-secret", "3.0 * x"] {
        assert!(!transcript.contains(secret), "`{secret}` reached the model");
    }
    // The model's requests never carried the box's source either.
    for (_, body) in model.requests.lock().unwrap().iter() {
        assert!(!body.to_string().contains("SECRET-MARKER"));
    }
}

#[test]
fn at_the_step_budget_the_model_is_asked_once_for_its_answer() {
    let (boxes, work) = setup();
    let model = scripted(vec![
        say("```assay\nshow box.f(1)\n```"),
        say("```assay\nshow box.f(2)\n```"),
        say("[DESCRIPTION]: a line\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return 3 * x - 2\n}\n```"),
    ]);
    let out =
        agent(work.path(), &model, &["function", boxes.path().join("box.rhai").to_str().unwrap(), "--steps", "2"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let reqs = model.requests.lock().unwrap();
    assert_eq!(reqs.len(), 3);
    let last = reqs[2].1["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    // The request for the answer carries the last step's output.
    assert!(
        last.contains("used all 2 steps") && last.contains("Step 2 of 2") && last.contains("show (line 1)"),
        "{last}"
    );
    assert_eq!(out.json()["answer"]["scores"]["solved"], true);
}

#[test]
fn the_agent_guide_is_current_and_fits_a_small_context() {
    let out = Test::new(&crate::support::repo_root()).args(["agent", "guide"]).run();
    assert_eq!(out.code, 0);
    let committed = std::fs::read_to_string(crate::support::repo_root().join("docs/agent-guide.md")).unwrap();
    assert_eq!(out.stdout, committed, "docs/agent-guide.md is stale: run `assay agent guide > docs/agent-guide.md`");
    // Counted with a real tokenizer: SmolLM2's (GPT-2-style byte-level BPE).
    let (_, tok) = assay_stdlib::models::smollm::provision().expect("SmolLM2 tokenizer");
    let t = tokenizers::Tokenizer::from_file(&tok).expect("tokenizer");
    let n = t.encode(committed.as_str(), false).expect("encode").len();
    eprintln!("agent guide: {n} tokens");
    assert!(n < 6000, "the agent guide is {n} tokens");
    // Each task's model gets only its part: smaller still.
    for task in ["function", "image-unit", "text-unit", "question"] {
        let part = Test::new(&crate::support::repo_root()).args(["agent", "guide", "--task", task]).run().stdout;
        let m = t.encode(part.as_str(), false).expect("encode").len();
        eprintln!("agent guide for {task}: {m} tokens");
        assert!(m <= n && m > 500, "the {task} guide is {m} tokens");
    }
}

#[test]
fn the_worked_investigation_in_examples_replays() {
    let examples = crate::support::repo_root().join("examples");
    let out = Test::new(&examples).args(["agent", "replay", "investigations/function/0001", "--json"]).run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.json()["replayed"], 3);
    let answer = read_json(&examples.join("investigations/function/0001/answer.json"));
    assert_eq!(answer["scores"]["solved"], true);
}

#[test]
fn an_open_question_reads_only_the_allowed_folder() {
    let data = temp_with(&[("notes.txt", "the answer is 42\n")]);
    let work = temp_with(&[]);
    let model = scripted(vec![
        say("```assay\nrecord \"notes\", read_text(\"notes.txt\")\n```"),
        say("```assay\nrecord \"passwd\", read_text(\"/etc/passwd\")\n```"),
        say("[ANSWER]: 42, as notes.txt says (step 1)."),
    ]);
    let out = agent(
        work.path(),
        &model,
        &["ask", "What number do the notes give?", "--allow-read", data.path().to_str().unwrap()],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["answer"]["fields"]["ANSWER"], "42, as notes.txt says (step 1).");
    let dir = folder(work.path(), &out);
    assert_eq!(read_json(&dir.join("steps/01/results.json"))["records"]["notes"], "the answer is 42\n");
    assert_eq!(read_json(&dir.join("steps/02/results.json"))["status"], "error");
    // Replay reads the folders the command line allows, as verify does.
    let replay = |extra: &[&str]| {
        Test::new(work.path()).args(["agent", "replay", dir.to_str().unwrap(), "--json"]).args(extra).run()
    };
    let r = replay(&["--allow-read", data.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["replayed"], 2);
    // Without it only the current folder, where the notes are not: step 1 differs.
    let r = replay(&[]);
    assert_eq!((r.code, r.json()["first_difference"].as_str()), (3, Some("01")), "{}{}", r.stdout, r.stderr);
    // A manifest edited to allow everything changes nothing: it is not trusted.
    let m = dir.join("manifest.json");
    let mut manifest = read_json(&m);
    manifest["task"]["roots"] = serde_json::json!(["/", data.path().to_str().unwrap()]);
    std::fs::write(&m, manifest.to_string()).unwrap();
    let r = replay(&[]);
    assert_eq!((r.code, r.json()["first_difference"].as_str()), (3, Some("01")), "{}{}", r.stdout, r.stderr);
}

#[test]
fn endpoints_with_tool_calling_send_scripts_as_run_assay_calls() {
    let (boxes, work) = setup();
    let model = scripted(vec![
        call("call_1", "record \"ys\", map([0, 1], x => box.f(x))\n"),
        say("[DESCRIPTION]: a line\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return 3 * x - 2\n}\n```"),
    ]);
    let out =
        agent(work.path(), &model, &["function", boxes.path().join("box.rhai").to_str().unwrap(), "--tool-calls"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let reqs = model.requests.lock().unwrap();
    assert_eq!(reqs[0].1["tools"][0]["function"]["name"], "run_assay");
    let msgs = reqs[1].1["messages"].as_array().unwrap();
    let (call, answer) = (&msgs[msgs.len() - 2], &msgs[msgs.len() - 1]);
    assert_eq!(call["tool_calls"][0]["id"], "call_1", "the call is carried in the conversation");
    assert_eq!(answer["role"], "tool");
    assert_eq!(answer["tool_call_id"], "call_1");
    assert!(answer["content"].as_str().unwrap().contains("[-2,1]"), "{answer}");
    assert_eq!(out.json()["answer"]["scores"]["solved"], true);
}

#[test]
fn a_vision_model_gets_the_shown_images_as_image_parts() {
    let (boxes, work) = setup();
    let model = scripted(vec![
        say("```assay\nshow \"two drawings\", [svg(`<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 2 2\"><rect width=\"2\" height=\"2\" fill=\"red\"/></svg>`, width: 8), svg(`<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 2 2\"/>`, width: 8)]\n```"),
        say("[DESCRIPTION]: a line\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return 3 * x - 2\n}\n```"),
    ]);
    let out = agent(work.path(), &model, &["function", boxes.path().join("box.rhai").to_str().unwrap(), "--vision"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let reqs = model.requests.lock().unwrap();
    let last = reqs[1].1["messages"].as_array().unwrap().last().unwrap().clone();
    let parts = last["content"].as_array().expect("content parts");
    assert_eq!(parts[0]["type"], "text");
    let urls: Vec<&str> = parts[1..].iter().map(|p| p["image_url"]["url"].as_str().unwrap()).collect();
    assert_eq!(urls.len(), 2);
    assert!(urls.iter().all(|u| u.starts_with("data:image/png;base64,")));
    // The first image decodes to the red square the script drew.
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD.decode(&urls[0]["data:image/png;base64,".len()..]).unwrap();
    let img = image::load_from_memory(&png).unwrap().to_rgba8();
    assert_eq!((img.width(), img.height()), (8, 8));
    assert_eq!(img.get_pixel(4, 4).0, [255, 0, 0, 255]);
    // The transcript keeps digests and files, not the data.
    let dir = folder(work.path(), &out);
    let t = std::fs::read_to_string(dir.join("transcript.jsonl")).unwrap();
    assert!(!t.contains("base64,") && t.contains("steps/01/shown/01.png") && t.contains("sha256"), "{t}");
    assert!(dir.join("steps/01/shown/02.png").is_file());
}

#[test]
fn a_synthetic_neuron_is_described_blind_and_its_stimuli_scored() {
    let work = temp_with(&[]);
    let dot = |c: &str| {
        format!("svg(`<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\"><circle cx=\"5\" cy=\"5\" r=\"4\" fill=\"{c}\"/></svg>`)")
    };
    let model = scripted(vec![
        say(&format!(
            "```assay\nrecord \"red\", unit({}).activations\nrecord \"blue\", unit({}).activations\n```",
            dot("red"),
            dot("blue")
        )),
        say("```assay\nrecord \"truth\", synthetic_neurons()\n```"),
        say("```assay\nshow unit\nrecord \"u\", unit\n```"),
        say(&format!(
            "[DESCRIPTION]: red things\n[LABEL]: red\n[POSITIVE]: [{}, {}]\n[NEGATIVE]: [{}, {}]\n",
            dot("red"),
            dot("crimson"),
            dot("blue"),
            dot("green")
        )),
    ]);
    let out = agent(work.path(), &model, &["unit", "--synthetic", "red"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["answer"]["scores"]["score"], 1, "{j}");
    let dir = folder(work.path(), &out);
    let step1 = read_json(&dir.join("steps/01/results.json"));
    let (red, blue) = (step1["records"]["red"][0].as_f64(), step1["records"]["blue"][0].as_f64());
    assert!(red.zip(blue).is_some_and(|(r, b)| r > b), "{step1}");
    // The tools that would name the neuron are withheld...
    assert!(std::fs::read_to_string(dir.join("steps/02/check.txt")).unwrap().contains("synthetic_neurons"));
    // ...and the unit describes itself as nothing more than a unit.
    let step3 = std::fs::read_to_string(dir.join("steps/03/results.json")).unwrap();
    assert!(step3.contains("the unit under study"), "{step3}");
    for leak in ["red", "channel", "low-level", "synthetic"] {
        assert!(!step3.contains(leak), "`{leak}` leaks: {step3}");
    }
    let reqs = model.requests.lock().unwrap();
    let shown = reqs[3].1["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    assert!(shown.contains("the unit under study") && !shown.contains("channel"), "{shown}");
    drop(reqs);
    let r = Test::new(work.path())
        .args(["agent", "replay", dir.to_str().unwrap(), "--json"])
        .env("ASSAY_CACHE_MIN_SECONDS", "0")
        .run();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["replayed"], 2);
    // The replay answers the unit's calls from the call cache the
    // investigation filled, and still comes out byte-identical.
    assert!(r.json()["cache_answered"].as_u64().unwrap_or(0) >= 1, "{}", r.stdout);
}

#[test]
fn a_unit_of_a_real_model_is_bound_blind_and_a_bad_unit_is_refused_up_front() {
    let work = temp_with(&[]);
    let dot = |c: &str| {
        format!("svg(`<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\"><circle cx=\"5\" cy=\"5\" r=\"4\" fill=\"{c}\"/></svg>`)")
    };
    let model = scripted(vec![
        say(&format!(
            "```assay\nshow \"a drawing\", {}\nrecord \"a\", unit({}).activations\nshow unit\n```",
            dot("red"),
            dot("red")
        )),
        say(&format!(
            "[DESCRIPTION]: red\n[LABEL]: red\n[POSITIVE]: [{}]\n[NEGATIVE]: [{}]\n",
            dot("red"),
            dot("blue")
        )),
    ]);
    let args = ["unit", "--model", "efficientnet-lite0", "--unit", "\"/_blocks.15/Relu6_output_0\", channel: 42"];
    let out = agent(work.path(), &model, &args);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let s = out.json()["answer"]["scores"]["score"].as_f64().expect("a score");
    assert!((0.0..=1.0).contains(&s));
    let dir = folder(work.path(), &out);
    let fb = sent(&model, 1);
    assert!(fb.contains("the unit under study") && !fb.contains("Relu6") && !fb.contains("42"), "{fb}");
    assert!(fb.contains("not sent"), "a model without --vision is told the images were not sent: {fb}");
    // The report shows the step's image.
    assert!(dir.join("steps/01/shown/01.png").is_file());
    assert!(std::fs::read_to_string(dir.join("report.html")).unwrap().contains("<img src=\"steps/01/shown/01.png\""));
    // A unit that does not exist is refused before the model is asked anything.
    let untouched = scripted(vec![]);
    let bad = agent(
        work.path(),
        &untouched,
        &["unit", "--model", "efficientnet-lite0", "--unit", "\"no such tensor\", channel: 0"],
    );
    assert_eq!(bad.code, 2, "{}{}", bad.stdout, bad.stderr);
    assert!(untouched.requests.lock().unwrap().is_empty());
}

#[test]
fn a_language_model_neuron_is_described_on_text_and_scored_on_texts() {
    let work = temp_with(&[]);
    let texts = ["The cat sat on the mat.", "Paris is in France.", "1, 2, 3, 4", "def f(x): return x"];
    let list = |ts: &[&str]| format!("[{}]", ts.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", "));
    let model = scripted(vec![
        say(&format!("```assay\nrecord \"maxima\", map({}, t => unit(t).max)\n```", list(&texts))),
        say(&format!(
            "[DESCRIPTION]: prose\n[LABEL]: prose\n[POSITIVE]: {}\n[NEGATIVE]: {}\n",
            list(&texts[..2]),
            list(&texts[2..])
        )),
    ]);
    let args =
        ["unit", "--model", "smollm2-135m", "--unit", "\"/model/layers.10/mlp/down_proj/MatMul_output_0\", neuron: 7"];
    let out = agent(work.path(), &model, &args);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // The model is told it studies a language model's unit, and gets the
    // text-unit guide (its answer format, no image tools).
    let reqs = model.requests.lock().unwrap();
    let msgs = reqs[0].1["messages"].as_array().unwrap();
    let (system, task) = (msgs[0]["content"].as_str().unwrap(), msgs[1]["content"].as_str().unwrap());
    assert!(task.contains("language model") && task.contains("texts"), "{task}");
    assert!(
        system.contains("for lists of texts") && system.contains("corpus(") && !system.contains("svg("),
        "{system}"
    );
    drop(reqs);
    // The score reads each text's largest value, as the step's script did.
    let dir = folder(work.path(), &out);
    let maxima: Vec<f64> = read_json(&dir.join("steps/01/results.json"))["records"]["maxima"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let scores = &out.json()["answer"]["scores"];
    let got = |k: &str| scores[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>();
    assert_eq!(got("positive"), maxima[..2].to_vec(), "{scores}");
    assert_eq!(got("negative"), maxima[2..].to_vec(), "{scores}");
    let wins = maxima[..2].iter().flat_map(|p| maxima[2..].iter().map(move |n| (p > n) as u8 as f64)).sum::<f64>();
    assert_eq!(scores["score"].as_f64().unwrap(), wins / 4.0, "{scores}");
}

#[test]
fn a_call_that_times_out_is_retried() {
    let (boxes, work) = setup();
    let hang = Turn { status: 0, retry_after: None, text: String::new(), message: None };
    let model = scripted(vec![
        hang,
        say("[DESCRIPTION]: a line\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return 3 * x - 2\n}\n```"),
    ]);
    let started = std::time::Instant::now();
    let out = agent(
        work.path(),
        &model,
        &["function", boxes.path().join("box.rhai").to_str().unwrap(), "--request-timeout", "1s"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let dir = folder(work.path(), &out);
    let t = std::fs::read_to_string(dir.join("transcript.jsonl")).unwrap();
    assert!(t.contains("\"attempts\":2"), "{t}");
}

#[test]
fn a_model_without_vision_gets_descriptions_from_the_configured_vision_model() {
    let (boxes, work) = setup();
    let model = scripted(vec![
        say("```assay\nshow svg(`<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 2 2\"><rect width=\"2\" height=\"2\" fill=\"red\"/></svg>`, width: 8)\n```"),
        say("[DESCRIPTION]: a line\n[DOMAIN]: none\n[CODE]:\n```assay\nfn f(x) {\n  return 3 * x - 2\n}\n```"),
    ]);
    // A second scripted endpoint stands in for the vision model `describe` uses.
    let describer = scripted(vec![say("A solid red square.")]);
    let out = Test::new(work.path())
        .args(["agent", "function", boxes.path().join("box.rhai").to_str().unwrap(), "--retry-wait", "10ms", "--json"])
        .env("ASSAY_AGENT_URL", &model.url)
        .env("ASSAY_AGENT_MODEL", "scripted")
        .env("ASSAY_LLM_URL", &describer.url)
        .env("ASSAY_LLM_MODEL", "vision")
        .run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let fb = sent(&model, 1);
    assert!(fb.contains("1. A solid red square."), "{fb}");
    let seen = describer.requests.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1["model"], "vision");
    assert!(seen[0].1["messages"][0]["content"][1]["image_url"]["url"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
}
