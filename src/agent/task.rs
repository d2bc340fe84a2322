//! What an investigation is about: the task (a black-box function, a
//! unit, an open question), what the harness binds for it, its prompt and
//! its answer's form.

use super::*;
use sha2::Digest;
use std::path::{Path, PathBuf};

/// How a black-box function's answer is scored, beyond the box itself.
#[derive(Clone, Debug, Default)]
pub struct FnSpec {
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
pub enum Task {
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
    pub(super) fn kind(&self) -> &'static str {
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

    pub(super) fn bound(&self) -> Vec<(String, String)> {
        match self {
            Task::Function { source, .. } => vec![("box".to_string(), source.clone())],
            Task::Question { .. } | Task::Unit { .. } | Task::ModelUnit { .. } => Vec::new(),
        }
    }

    /// Networks behind bound boxes, as the child takes them.
    pub(super) fn nets(&self) -> Vec<(String, String)> {
        match self {
            Task::Function { spec: FnSpec { net: Some(bytes), .. }, .. } => {
                vec![("box".to_string(), base64::engine::general_purpose::STANDARD.encode(bytes))]
            }
            _ => Vec::new(),
        }
    }

    /// What the harness runs before each script to bind the unit.
    pub(super) fn prelude(&self) -> Option<(String, Vec<(String, String)>)> {
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
    pub(super) fn folders(&self, scratch: &Path) -> (PathBuf, Vec<PathBuf>) {
        match self {
            Task::Question { roots, .. } if !roots.is_empty() => (roots[0].clone(), roots.clone()),
            _ => (scratch.to_path_buf(), vec![scratch.to_path_buf()]),
        }
    }

    /// Tools withheld from the agent's scripts.
    pub(super) fn denied(&self) -> Vec<String> {
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

    pub(super) fn prompt(&self) -> String {
        match self {
            Task::Function { name, spec: FnSpec { strings: Some(_), .. }, .. } => format!(
                "Describe the black-box function `box.{name}`. It takes one string and returns a string, a number or a bool. Call it as `box.{name}(s)` in your scripts (you cannot read its code). Find what it computes: try words, sentences, letters, digits and edge cases. Finish with [DESCRIPTION] and [CODE] (an Assay `fn f(s)` that gives exactly the same output on any word)."
            ),
            Task::Function { name, .. } => format!(
                "Describe the black-box function `box.{name}`. It takes one number and returns a number. Call it as `box.{name}(x)` in your scripts (you cannot read its code). Find what it computes over the domain [-128, 128], and any interval where it behaves differently. Start by calling it on many inputs. The box is deterministic: the same x always gives the same output, and where it adds noise, the noise is a fixed function of x, so repeated calls at one x do not differ and noise can look like signal. Finish with [DESCRIPTION], [DOMAIN] and [CODE] (an Assay `fn f(x)`)."
            ),
            Task::Question { text, .. } => {
                format!("Answer this question by running experiments: {text}\nFinish with [ANSWER].")
            }
            Task::ModelUnit { unit, .. } if takes_text(unit) => "Describe what drives the unit bound as `unit`: a neuron or attention head of a language model. Call it on text, `unit(\"some text\")`, which gives {tokens, activations, max, at}: its value at every token beside the token (for a head, the norm of its output); find the contexts that drive it most with `exemplars(unit, sample(corpus(), 300, seed: 1), k: 10)` (`.contexts` marks the strongest token as ⟦token⟧), write varied texts, compare minimal pairs, and use `score`. Finish with [DESCRIPTION], [LABEL], [POSITIVE] and [NEGATIVE] (Assay expressions for lists of texts it should and should not respond to).".to_string(),
            Task::Unit { .. } | Task::ModelUnit { .. } => "Describe what drives the unit bound as `unit`: a unit of an image model. Call it on images, `unit(images)`, which gives {activations, masked}; use exemplars over a sample (e.g. `exemplars(unit, sample(emoji(), 200, seed: 1), k: 12)`; a whole data set can take longer than a step may run), drawings (`svg`), edits and `score`. Finish with [DESCRIPTION], [LABEL], [POSITIVE] and [NEGATIVE] (Assay expressions for lists of images it should and should not respond to).".to_string(),
        }
    }

    /// The task as the manifest records it.
    pub(super) fn record(&self) -> TaskRecord {
        let sha = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
        match self {
            Task::Function { path, source, name, spec } => TaskRecord::Function {
                function: name.clone(),
                strings: spec.strings.is_some(),
                // A network behind the box is kept beside it as BOX.onnx.
                net_sha256: spec.net.as_deref().map(sha),
                // Where the box came from, for replay; its source is not kept here.
                box_path: path.display().to_string(),
                box_sha256: sha(source.as_bytes()),
            },
            Task::Unit { synthetic } => {
                TaskRecord::Unit { synthetic: Some(synthetic.clone()), model: None, unit: None }
            }
            Task::ModelUnit { model, unit } => {
                TaskRecord::Unit { synthetic: None, model: Some(model.clone()), unit: Some(unit.clone()) }
            }
            Task::Question { text, roots } => TaskRecord::Question {
                question: text.clone(),
                roots: roots.iter().map(|r| r.display().to_string()).collect(),
            },
        }
    }
}

/// Whether a model unit, given as `unit(...)`'s arguments after the model,
/// is read on text: a `neuron:` or `head:` (of [N, T, D] or heads), which
/// only language models have; a `channel:` is read on images.
pub(super) fn takes_text(unit_args: &str) -> bool {
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
