//! An investigation's manifest.json, typed: written when the investigation
//! finishes and read back by `assay agent replay`, through the same
//! [`ManifestFile`] code as a run's manifest (canonical JSON; fields a newer
//! Assay wrote are kept in `other`).

use std::collections::BTreeMap;

use assay_interpreter::ManifestFile;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// How an investigation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    /// The model's final answer passed its checks and was scored.
    Answered,
    /// The final answer failed its checks on every try; scored as failed.
    AnswerRejected,
    /// The steps were spent and no answer came.
    NoAnswer,
    /// The token budget ran out.
    TokenBudget,
    /// The wall-clock budget ran out.
    TimeBudget,
    /// The model's endpoint failed (after its retries).
    EndpointFailed,
}

impl Ending {
    /// The name records and the command line use (`answer-rejected`).
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Answered => "answered",
            Ending::AnswerRejected => "answer-rejected",
            Ending::NoAnswer => "no-answer",
            Ending::TokenBudget => "token-budget",
            Ending::TimeBudget => "time-budget",
            Ending::EndpointFailed => "endpoint-failed",
        }
    }
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was investigated, as replay needs it: never a black box's source
/// (only its path and sha256) and never a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TaskRecord {
    Function {
        /// The function's name in the box.
        function: String,
        /// A string function (FIND's string set). (Older records lack
        /// this field and the next: numeric, no network.)
        #[serde(default)]
        strings: bool,
        /// The sha256 of the network behind the box (kept beside it as BOX.onnx).
        #[serde(default)]
        net_sha256: Option<String>,
        /// Where the box came from, for replay.
        box_path: String,
        box_sha256: String,
    },
    /// A synthetic neuron (`synthetic`) or a unit of a named model (`model`, `unit`).
    Unit {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        synthetic: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    Question {
        question: String,
        /// The folders its scripts could read (replay takes them from its
        /// own command line instead).
        roots: Vec<String>,
    },
}

/// One step as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepEntry {
    pub step: usize,
    /// The step's run status (`ok`, `error`, `assert-failed`, ...), or why
    /// nothing ran (`no-script`, `several-scripts`).
    pub status: String,
    /// The step's folder, relative to the investigation's.
    pub folder: String,
}

/// The limits the investigation ran under.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitsRecord {
    pub steps: usize,
    /// Each step's memory budget in bytes.
    pub memory: u64,
    pub step_timeout_seconds: f64,
    pub reply_chars: usize,
}

/// An investigation folder's manifest.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvestigationManifest {
    pub assay_version: String,
    pub task: TaskRecord,
    /// The model (or `baseline:NAME`) that investigated.
    pub model: String,
    /// The endpoint's URL without secrets; none for a baseline.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub steps: Vec<StepEntry>,
    pub status: Ending,
    #[serde(default)]
    pub tokens: u64,
    /// The sha256 of the guide the model was given.
    #[serde(default)]
    pub guide_sha256: String,
    #[serde(default)]
    pub limits: LimitsRecord,
    /// Fields this version does not know (a newer Assay's), kept as read.
    #[serde(flatten)]
    pub other: BTreeMap<String, Json>,
}

impl ManifestFile for InvestigationManifest {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(task: TaskRecord) -> InvestigationManifest {
        InvestigationManifest {
            assay_version: "0.1.0".into(),
            task,
            model: "m".into(),
            endpoint: None,
            steps: vec![StepEntry { step: 1, status: "ok".into(), folder: "steps/01".into() }],
            status: Ending::AnswerRejected,
            tokens: 12,
            guide_sha256: "ab".into(),
            limits: LimitsRecord { steps: 4, memory: 1 << 30, step_timeout_seconds: 60.0, reply_chars: 9000 },
            other: BTreeMap::new(),
        }
    }

    #[test]
    fn every_task_kind_reads_back_as_written() {
        for task in [
            TaskRecord::Function {
                function: "f".into(),
                strings: false,
                net_sha256: None,
                box_path: "b.rhai".into(),
                box_sha256: "cd".into(),
            },
            TaskRecord::Unit { synthetic: Some("cars".into()), model: None, unit: None },
            TaskRecord::Unit { synthetic: None, model: Some("smollm2".into()), unit: Some("\"x\", neuron: 3".into()) },
            TaskRecord::Question { question: "why?".into(), roots: vec!["/data".into()] },
        ] {
            let m = sample(task);
            let text = m.to_json();
            assert_eq!(InvestigationManifest::parse(text.as_bytes()).unwrap(), m, "{text}");
        }
    }

    #[test]
    fn the_written_form_is_the_one_records_have_always_had() {
        let m = sample(TaskRecord::Unit { synthetic: Some("cars".into()), model: None, unit: None });
        let j: Json = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(j["status"], "answer-rejected");
        assert_eq!(j["task"], serde_json::json!({"kind": "unit", "synthetic": "cars"}));
        assert_eq!(j["endpoint"], Json::Null);
        assert_eq!(j["limits"]["step_timeout_seconds"], 60.0);
        // A field from a newer Assay survives a read and a write.
        let mut newer = j.clone();
        newer["reviewer"] = serde_json::json!("x");
        let back = InvestigationManifest::parse(newer.to_string().as_bytes()).unwrap();
        assert_eq!(serde_json::from_str::<Json>(&back.to_json()).unwrap()["reviewer"], "x");
        // A record from before string functions and networks reads as
        // numeric with no network.
        let old = r#"{"assay_version": "0.1.0", "status": "answered", "model": "m", "task": {"kind": "function", "function": "f", "box_path": "b.rhai", "box_sha256": "cd"}}"#;
        let back = InvestigationManifest::parse(old.as_bytes()).unwrap();
        assert!(matches!(back.task, TaskRecord::Function { strings: false, net_sha256: None, .. }), "{back:?}");
        // An unknown ending is refused, not read as some other one.
        let mut odd = j;
        odd["status"] = serde_json::json!("finished");
        assert!(InvestigationManifest::parse(odd.to_string().as_bytes()).is_err());
    }
}
