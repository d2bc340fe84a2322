//! The conversation with the investigator: the messages the endpoint is
//! sent, and the transcript that keeps them (with usage, notes, and images
//! by file and digest instead of their data).

use base64::Engine as _;
use serde_json::{json, Value as Json};
use sha2::Digest;

use assay_stdlib::llm::{Reply, ToolCall};

#[derive(Default)]
pub(super) struct Conversation {
    pub(super) messages: Vec<Json>,
    pub(super) transcript: Vec<Json>,
}

impl Conversation {
    /// The system prompt (the guide) and the task.
    pub(super) fn new(guide: &str, prompt: String) -> Conversation {
        let mut c = Conversation::default();
        c.say(json!({"role": "system", "content": guide}));
        c.say(json!({"role": "user", "content": prompt}));
        c
    }

    /// A message, kept as sent.
    pub(super) fn say(&mut self, m: Json) {
        self.transcript.push(json!({"message": m}));
        self.messages.push(m);
    }

    /// A message, kept as `logged` (with notes, or images by file).
    pub(super) fn say_logged(&mut self, m: Json, logged: Json) {
        self.transcript.push(logged);
        self.messages.push(m);
    }

    /// The investigator's reply: carried whole when it makes function
    /// calls (the endpoint needs its tool_calls to match the tool messages
    /// that answer them).
    pub(super) fn reply(&mut self, reply: &Reply) {
        let m = if reply.tool_calls.is_empty() {
            json!({"role": "assistant", "content": reply.text})
        } else {
            let mut m = reply.message.clone();
            m["role"] = json!("assistant");
            m
        };
        self.say_logged(m.clone(), json!({"message": m, "usage": reply.usage, "attempts": reply.attempts}));
    }

    /// Answers each of `calls` with `content` (every call must be answered).
    pub(super) fn answer_calls(&mut self, calls: &[ToolCall], content: &str) {
        for call in calls {
            self.say(json!({"role": "tool", "tool_call_id": call.id, "content": content}));
        }
    }

    /// A step's feedback `text`, with the images it showed (`images`, as
    /// (file, PNG) under `steps/NN/shown/`): as the reply's message, or as
    /// the answer to its first function call (the others are told to send
    /// one script per reply). A tool message cannot carry images, so they
    /// follow it as a user message.
    pub(super) fn feedback(
        &mut self,
        reply: &Reply,
        step: usize,
        text: &str,
        images: &[(String, Vec<u8>)],
        shown_files: &[String],
    ) {
        if reply.tool_calls.is_empty() {
            if images.is_empty() {
                let m = json!({"role": "user", "content": text});
                self.say_logged(m.clone(), json!({"message": m, "images": shown_files}));
            } else {
                let (m, logged) = image_message(text, step, images, shown_files);
                self.say_logged(m, logged);
            }
            return;
        }
        for (i, call) in reply.tool_calls.iter().enumerate() {
            let content = if i == 0 { text } else { "Not run: send one script per reply." };
            self.say(json!({"role": "tool", "tool_call_id": call.id, "content": content}));
        }
        if !images.is_empty() {
            let (m, logged) = image_message(&format!("The images step {step} showed:"), step, images, shown_files);
            self.say_logged(m, logged);
        }
    }
}

/// Images as OpenAI image parts in a user message; the transcript keeps
/// their files and digests instead of the data.
fn image_message(text: &str, step: usize, images: &[(String, Vec<u8>)], shown_files: &[String]) -> (Json, Json) {
    let mut parts = vec![json!({"type": "text", "text": text})];
    let mut logged = parts.clone();
    for (file, png) in images {
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        parts.push(json!({"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{b64}")}}));
        logged.push(json!({"type": "image", "file": format!("steps/{step:02}/shown/{file}"), "sha256": hex::encode(sha2::Sha256::digest(png))}));
    }
    (
        json!({"role": "user", "content": parts}),
        json!({"message": {"role": "user", "content": logged}, "images": shown_files}),
    )
}
