//! Who writes the scripts: a language model behind an endpoint, or a
//! baseline written in Assay.

use assay_interpreter::read_regular;
use assay_stdlib::llm::{Endpoint, Reply, Retry};
use serde_json::{json, Value as Json};
use std::path::Path;

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
