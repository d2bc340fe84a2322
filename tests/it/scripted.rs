//! A scripted language model: the test double that stands in for a hosted
//! model (none can exist in tests or benchmarks here). A real HTTP server on
//! loopback that speaks the OpenAI chat-completions protocol and answers
//! each request with the next scripted reply (or fault), recording what it
//! was sent. Shared by the agent tests, the benchmark suite and the
//! agent-step benchmark (`#[path]`-included).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, reason = "a test double fails loudly")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value as Json};

/// One scripted answer: an HTTP status, a Retry-After header, and the
/// assistant's text (for 200) or the body (otherwise).
pub(crate) struct Turn {
    pub status: u16,
    pub retry_after: Option<&'static str>,
    pub text: String,
    /// A whole assistant message instead of text (a function call).
    pub message: Option<Json>,
}

pub(crate) fn say(text: &str) -> Turn {
    Turn { status: 200, retry_after: None, text: text.to_string(), message: None }
}

pub(crate) fn fault(status: u16, retry_after: Option<&'static str>) -> Turn {
    Turn { status, retry_after, text: "{\"error\": \"busy\"}".into(), message: None }
}

/// A reply that calls `run_assay` with a script, as tool-calling endpoints send it.
pub(crate) fn call(id: &str, script: &str) -> Turn {
    let message = json!({
        "role": "assistant",
        "content": null,
        "tool_calls": [{"id": id, "type": "function", "function": {"name": "run_assay", "arguments": json!({"script": script}).to_string()}}],
    });
    Turn { status: 200, retry_after: None, text: String::new(), message: Some(message) }
}

pub(crate) struct Scripted {
    pub url: String,
    pub requests: Arc<Mutex<Vec<(String, Json)>>>,
}

/// Serves the turns in order, then answers 500 to anything more.
pub(crate) fn scripted(turns: Vec<Turn>) -> Scripted {
    let mut turns = turns.into_iter();
    responding(move |_| turns.next().unwrap_or_else(|| fault(500, None)))
}

/// Answers each request with `reply(request body)`: a test double that
/// reads what it is sent (a model that follows instructions it finds).
pub(crate) fn responding(mut reply: impl FnMut(&Json) -> Turn + Send + 'static) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    std::thread::spawn(move || {
        // Bounded: a test never makes more than this many requests.
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let (mut len, mut auth) = (0usize, String::new());
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim_end().is_empty() {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") {
                    auth = h.trim_end().to_string();
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let request: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
            let turn = reply(&request);
            log.lock().unwrap().push((auth, request));
            if turn.status == 0 {
                // A model that does not answer in time: hold the request, then drop it.
                std::thread::sleep(std::time::Duration::from_millis(1500));
                continue;
            }
            let payload = if turn.status == 200 {
                let message =
                    turn.message.clone().unwrap_or_else(|| json!({"role": "assistant", "content": turn.text}));
                json!({"choices": [{"message": message}], "usage": {"total_tokens": 100}}).to_string()
            } else {
                turn.text.clone()
            };
            let extra = turn.retry_after.map(|r| format!("Retry-After: {r}\r\n")).unwrap_or_default();
            let _ = write!(
                stream,
                "HTTP/1.1 {} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                turn.status,
                payload.len()
            );
        }
    });
    Scripted { url, requests }
}
