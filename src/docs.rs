//! Tool documentation generated from the registry: `assay tools`, its
//! `--json` form for agents, and docs/tools.md. One source of truth.

use std::fmt::Write as _;

use assay_interpreter::{Category, Default, Registry, Signature};
use serde_json::json;

fn categories(r: &Registry) -> Vec<(Category, Vec<&Signature>)> {
    let mut cats: Vec<(Category, Vec<&Signature>)> = Vec::new();
    for s in r.signatures() {
        match cats.iter_mut().find(|(c, _)| *c == s.category) {
            Some((_, v)) => v.push(s),
            None => cats.push((s.category, vec![s])),
        }
    }
    cats.sort_by_key(|(c, _)| c.name());
    cats
}

pub fn tools_text(r: &Registry) -> String {
    let mut out = String::new();
    for (cat, sigs) in categories(r) {
        let _ = writeln!(out, "{cat}:");
        for s in sigs {
            let _ = writeln!(out, "  {}\n      {}", s.render(), s.doc);
        }
    }
    let _ = writeln!(out, "\n{} tools. `assay tools --json` gives parameters, docs and examples.", r.len());
    out
}

pub fn tools_json(r: &Registry) -> serde_json::Value {
    let tools: Vec<_> = r
        .signatures()
        .map(|s| {
            let params: Vec<_> = s
                .params
                .iter()
                .map(|p| {
                    let default = match &p.default {
                        Default::Required => json!(null),
                        Default::Value(v) => json!(v.to_repr()),
                    };
                    json!({"name": p.name, "type": p.ty.to_string(), "required": matches!(p.default, Default::Required), "default": default, "doc": p.doc})
                })
                .collect();
            json!({
                "name": s.name,
                "category": s.category.name(),
                "signature": s.render(),
                "params": params,
                "returns": s.returns.to_string(),
                "doc": s.doc,
                "examples": s.examples,
            })
        })
        .collect();
    json!({"tools": tools})
}

pub fn tools_markdown(r: &Registry) -> String {
    let mut out = String::new();
    out.push_str("# Assay tools\n\n");
    out.push_str("Generated from the tool registry by `assay tools --markdown`; do not edit by hand.\n");
    out.push_str("Every example below is a script that the test suite runs; its asserts pass.\n\n");
    for (cat, sigs) in categories(r) {
        let _ = writeln!(out, "## {cat}\n");
        for s in sigs {
            let _ = writeln!(out, "### `{}`\n\n```\n{}\n```\n\n{}\n", s.name, s.render(), s.doc);
            if let Some(var) = s.requires {
                let _ = writeln!(out, "Needs `{var}` to be set; its example runs only where it is.\n");
            }
            if !s.params.is_empty() {
                out.push_str("| parameter | type | default | meaning |\n|---|---|---|---|\n");
                for p in &s.params {
                    let d = match &p.default {
                        Default::Required => "required".to_string(),
                        Default::Value(v) => format!("`{}`", v.to_repr()),
                    };
                    let _ = writeln!(out, "| `{}` | {} | {} | {} |", p.name, p.ty, d, p.doc);
                }
                out.push('\n');
            }
            for ex in &s.examples {
                let _ = writeln!(out, "```assay\n{ex}\n```\n");
            }
        }
    }
    out
}

/// The language in brief, for the agent guide (the whole reference is
/// docs/language.md; this is what a model needs to write a correct script).
const LANGUAGE_BRIEF: &str = r#"## The language in brief

- Values: numbers (64-bit floats), strings `"top {k} of {n}"` (interpolate with `{expr}`; `{{` for a brace), raw strings in backticks (for SVG), `true`/`false`/`none`, lists `[1, 2]`, records `{name: value}`, ranges `a..b` (end excluded), tensors, images, and tool objects (models, units, data sets).
- `let x = ...` binds; `x = ...` and `x += ...` reassign. `if c { } else { }` needs a bool (write `len(xs) > 0`). `for x in xs { }`, `for i, x in xs { }`; `break`, `continue`; no `while`.
- Functions: `fn f(x, k = 2) { return x * k }`; lambdas `x => x * 2`, `(a, b) => a + b`. Calls are positional, then named: `top_k(xs, 3, largest: false)`. `xs.f(a)` means `f(xs, a)`. Tools are values: `map(xs, abs)`.
- Operators: `+ - * / % **`, `== != < <= > >=`, `and or not`, `x in xs`. `+` joins strings and lists. Indexing from 0, negative from the end, `xs[1..3]` slices.
- Experiment statements: `show "title", value` (to the report and back to you), `record "name", value` (the result; each name once, interpolate in loops: `record "y at {x}", y`), `assert cond, "message"` (a claim; failing is a result, not a crash), `seed N` (first line; all randomness derives from it).
- A task's black box is called as `box.f(3.5)`.
- Feedback shows lists' first 20 items (slice for more: `xs[20..40]`) and numbers to 10 digits; long output is cut.
- Scripts read only their allowed folders (no network), within memory and time budgets.
"#;

/// Which investigation a guide is for: the tools that fit it and its
/// answer format. `All` is docs/agent-guide.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Focus {
    All,
    /// A black-box numeric function (FIND).
    Function,
    /// A unit of an image model, or a synthetic neuron (MAIA).
    ImageUnit,
    /// A neuron or head of a language model.
    TextUnit,
    /// An open question.
    Question,
}

/// Whether a tool fits an investigation: a function's scripts compute on
/// numbers and strings only; a unit's get the tools of its modality.
fn fits(s: &Signature, focus: Focus) -> bool {
    use Category::*;
    const CORE: [Category; 5] = [Lists, Math, Statistics, Random, Tensor];
    let takes_handle = s.params.iter().any(|p| matches!(p.ty, assay_interpreter::Type::Handle(_)));
    match focus {
        Focus::All | Focus::Question => true,
        Focus::Function => CORE.contains(&s.category) || (s.category == Text && !takes_handle),
        // A unit under study is not a synthetic neuron the script could name.
        Focus::ImageUnit | Focus::TextUnit if s.name.starts_with("synthetic") => false,
        Focus::ImageUnit => {
            CORE.contains(&s.category)
                || [Images, Vision, Models].contains(&s.category)
                || (s.category == Text && !takes_handle)
        }
        Focus::TextUnit => {
            CORE.contains(&s.category)
                || [Text, Metrics, Models].contains(&s.category)
                || ["score", "plot", "exemplars"].contains(&s.name)
        }
    }
}

const ANSWER_FUNCTION: &str = r#"A black-box function (numbers in, numbers out): end with

[DESCRIPTION]: what the function computes, in words.
[DOMAIN]: where it behaves differently (e.g. replaced by noise): none, [a, b], x < a, x > a or a < x < b, then any explanation.
[CODE]:
```assay
fn f(x) {
  return 2 * x + 1
}
```

`fn f(x)` takes one number and may not call the black box; it is scored by normalised mean squared error on x = -127.5, -126.5, ..., 127.5.
"#;

const ANSWER_IMAGE_UNIT: &str = r#"A unit of an image model (bound as `unit`): end with

[DESCRIPTION]: what drives it, in words.
[LABEL]: a few words.
[POSITIVE]: [svg("..."), svg("...")]
[NEGATIVE]: [svg("..."), svg("...")]

Bare Assay expressions (no backticks) for lists of images it should and should not respond to (ideally minimal pairs), scored by `score` (ROC AUC; 1 perfect, 0.5 chance).
"#;

const ANSWER_TEXT_UNIT: &str = r#"A neuron or head of a language model (bound as `unit`; call it on text, `unit("some text")`): end with

[DESCRIPTION]: what drives it, in words.
[LABEL]: a few words.
[POSITIVE]: ["a text it responds to", "another"]
[NEGATIVE]: ["a text it does not respond to", "another"]

Bare Assay expressions (no backticks) for lists of texts, scored by `score` over each text's largest value.
"#;

const ANSWER_QUESTION: &str = r#"An open question: end with

[ANSWER]: your answer, and the evidence (which steps showed it).
"#;

/// The agent guide: the language in brief, the tools that fit the task in
/// one line each, and the answer format. Generated from the registry;
/// docs/agent-guide.md (`Focus::All`) is checked current by a test.
pub fn agent_guide(r: &Registry, focus: Focus) -> String {
    let example = match focus {
        Focus::ImageUnit => "```assay\nlet top = exemplars(unit, sample(emoji(), 200, seed: 1), k: 6)\nshow \"what drives it most\", top.images\nshow \"their labels\", top.labels\n```\n\n(200 emoji take about 2 s on a 2-core CPU; all 4,495 about 75 s: sample them.)",
        Focus::TextUnit => "```assay\nlet top = exemplars(unit, sample(corpus(), 300, seed: 1), k: 8)\nshow \"contexts that drive it most\", top.contexts\nshow \"token by token\", unit(\"The cat sat on the mat.\")\n```\n\n(300 corpus texts take about 15 s on a 2-core CPU; the whole corpus, 3,300 texts, about 3 minutes: sample it.)",
        _ => "```assay\nlet ys = map([1, 2, 3], x => box.f(x))\nshow \"outputs\", ys\n```",
    };
    let mut out = format!(
        "# Assay for agents\n\nYou investigate a model or a black-box function by writing Assay scripts. Each reply holds exactly one script in a fenced block:\n\n{example}\n\nAssay checks and runs it in a sandbox and answers with what it showed and recorded, its asserts and errors. Keep each script short; show what you need. When you are sure, reply with the final answer instead of a script.\n\n",
    );
    out.push_str(LANGUAGE_BRIEF);
    out.push_str(
        "\n## Tools\n\n`name(parameters) -> result`; `= value` or `?` marks an optional parameter (pass it by name).\n",
    );
    for (cat, sigs) in categories(r) {
        let sigs: Vec<_> = sigs.into_iter().filter(|s| fits(s, focus)).collect();
        if sigs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {cat}\n");
        // The first sentence, cut at a word near 55 characters: the guide
        // must fit a small model's context (`assay tools` has the rest).
        let short = |s: &Signature| {
            let first = s.doc.split(". ").next().unwrap_or(s.doc).trim_end_matches('.');
            match first.char_indices().nth(55) {
                Some((i, _)) => format!("{}…", first[..i].rsplit_once(' ').map(|(a, _)| a).unwrap_or(&first[..i])),
                None => format!("{first}."),
            }
        };
        // `x: T | none = none` is `x?: T` here; a long default text (a
        // prompt) is elided (`assay tools` has it).
        let render = |s: &Signature| elide_long_texts(&optional_none(&s.render().replace(" | none = none", " = none")));
        // Tools of one shape (`abs`, `sin`, ...) share one line.
        let shape = |s: &Signature| render(s)[s.name.len()..].to_string();
        let mut done = vec![false; sigs.len()];
        // The edits `edit` applies share one line: each one's parameters
        // (untyped: they are numbers but for `flip`'s axis, `paste`'s
        // picture and `recolour`'s colour) and what it does, in brief.
        let edits: Vec<usize> = (0..sigs.len()).filter(|&i| sigs[i].doc.starts_with("An edit: ")).collect();
        if edits.len() > 1 {
            let items: Vec<String> = edits
                .iter()
                .map(|&i| {
                    let s = sigs[i];
                    let params: Vec<String> = s
                        .params
                        .iter()
                        .map(|p| match &p.default {
                            assay_interpreter::Default::Required => p.name.to_string(),
                            assay_interpreter::Default::Value(v) => format!("{} = {}", p.name, v.to_repr()),
                        })
                        .collect();
                    // What it does, cut at a word near 36 characters.
                    let first = s.doc.trim_start_matches("An edit: ");
                    let first = first.split(". ").next().unwrap_or(first).trim_end_matches('.');
                    let what = match first.char_indices().nth(36) {
                        Some((i, _)) => {
                            format!("{}…", first[..i].rsplit_once(' ').map(|(a, _)| a).unwrap_or(&first[..i]))
                        }
                        None => first.to_string(),
                    };
                    format!("`{}({})` {what}", s.name, params.join(", "))
                })
                .collect();
            let _ = writeln!(out, "- Edits, records for `edit`: {}.", items.join("; "));
            for i in edits {
                done[i] = true;
            }
        }
        for (i, s) in sigs.iter().enumerate() {
            if done[i] {
                continue;
            }
            let same: Vec<usize> = (i..sigs.len()).filter(|&j| !done[j] && shape(sigs[j]) == shape(s)).collect();
            if same.len() < 3 {
                done[i] = true;
                let _ = writeln!(out, "- `{}`: {}", render(s), short(s));
                continue;
            }
            let names: Vec<&str> = same.iter().map(|&j| sigs[j].name).collect();
            let docs: Vec<String> =
                same.iter().map(|&j| format!("`{}`: {}", sigs[j].name, short(sigs[j]).trim_end_matches('.'))).collect();
            let _ = writeln!(out, "- `f{}` for each of {}: {}.", shape(s), names.join(", "), docs.join("; "));
            for j in same {
                done[j] = true;
            }
        }
    }
    out.push_str("\n## Answers\n\n");
    let answers: &[&str] = match focus {
        Focus::All => &[ANSWER_FUNCTION, ANSWER_IMAGE_UNIT, ANSWER_TEXT_UNIT, ANSWER_QUESTION],
        Focus::Function => &[ANSWER_FUNCTION],
        Focus::ImageUnit => &[ANSWER_IMAGE_UNIT],
        Focus::TextUnit => &[ANSWER_TEXT_UNIT],
        Focus::Question => &[ANSWER_QUESTION],
    };
    out.push_str(&answers.join("\n"));
    out.push_str(ANSWER_CHECK);
    out
}

/// Each `name: T = none` parameter as `name?: T`.
fn optional_none(rendered: &str) -> String {
    let Some((head, rest)) = rendered.split_once('(') else { return rendered.to_string() };
    let Some((params, tail)) = rest.rsplit_once(") -> ") else { return rendered.to_string() };
    let params: Vec<String> = split_top(params)
        .into_iter()
        .map(|p| match (p.strip_suffix(" = none"), p.split_once(": ")) {
            (Some(typed), Some((name, _))) => format!("{name}?{}", &typed[name.len()..]),
            _ => p.to_string(),
        })
        .collect();
    format!("{head}({}) -> {tail}", params.join(", "))
}

/// Splits a parameter list at its top-level commas (not inside quotes).
fn split_top(params: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in params.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted && params[i..].starts_with(", ") => {
                out.push(&params[start..i]);
                start = i + 2;
            }
            _ => {}
        }
    }
    if !params.is_empty() {
        out.push(&params[start..]);
    }
    out
}

/// `= "a long default text"` as `= "…"` past 30 characters.
fn elide_long_texts(rendered: &str) -> String {
    let mut out = String::new();
    let mut rest = rendered;
    while let Some(i) = rest.find("= \"") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let Some(end) = rest.find('"') else { break };
        if rest[..end].chars().count() > 30 {
            out.push('…');
        } else {
            out.push_str(&rest[..end]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

const ANSWER_CHECK: &str = "\nAnswers are checked first (every field there, every expression runs); a problem comes back naming the field, and you may answer again twice.\n";
