//! The one network peer a script may reach: an OpenAI-compatible chat
//! endpoint (hosted APIs, vLLM, llama.cpp's server, Ollama), configured by
//! the person running Assay, never by the script: `ASSAY_LLM_URL` (the base
//! URL, e.g. `http://127.0.0.1:8080/v1`), `ASSAY_LLM_MODEL`, and optionally
//! `ASSAY_LLM_KEY`. Images travel as PNG data URLs.

use std::time::Duration;

use assay_interpreter::Image;
use base64::Engine as _;
use serde_json::{json, Value as Json};

/// The key for `describe`'s endpoint when it is given to this process other
/// than in its environment (the sandboxed child gets it in its job).
static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the key `from_env` uses before ASSAY_LLM_KEY (once per process).
pub fn set_key(key: Option<String>) {
    if let Some(k) = key {
        let _ = KEY.set(k);
    }
}

pub struct Endpoint {
    pub url: String,
    pub model: String,
    pub key: Option<String>,
}

impl Endpoint {
    pub fn from_env() -> Result<Endpoint, String> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        match (get("ASSAY_LLM_URL"), get("ASSAY_LLM_MODEL")) {
            (Some(url), Some(model)) => Ok(Endpoint {
                url: url.trim_end_matches('/').to_string(),
                model,
                key: KEY.get().cloned().or_else(|| get("ASSAY_LLM_KEY")),
            }),
            _ => Err("no language model is configured: set ASSAY_LLM_URL (an OpenAI-compatible base URL such as http://127.0.0.1:8080/v1) and ASSAY_LLM_MODEL, and ASSAY_LLM_KEY if it needs one".into()),
        }
    }

    /// The URL as it may be shown: no user name, password or query
    /// (where API keys are often put), so no secret reaches a run record.
    pub fn public_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The endpoint configured for the agent: `ASSAY_AGENT_URL` and
    /// `ASSAY_AGENT_MODEL` where set, else the `ASSAY_LLM_*` ones.
    pub fn for_agent() -> Result<Endpoint, String> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        match (get("ASSAY_AGENT_URL").or_else(|| get("ASSAY_LLM_URL")), get("ASSAY_AGENT_MODEL").or_else(|| get("ASSAY_LLM_MODEL"))) {
            (Some(url), Some(model)) => Ok(Endpoint {
                url: url.trim_end_matches('/').to_string(),
                model,
                key: get("ASSAY_AGENT_KEY").or_else(|| get("ASSAY_LLM_KEY")),
            }),
            _ => Err("no model is configured for the agent: set ASSAY_AGENT_URL (or ASSAY_LLM_URL), an OpenAI-compatible base URL such as http://127.0.0.1:8080/v1, and ASSAY_AGENT_MODEL (or ASSAY_LLM_MODEL); ASSAY_AGENT_KEY if it needs one".into()),
        }
    }

    /// A message with every copy of the URL and key replaced by their
    /// public form (errors from the HTTP client quote the URL they used).
    pub fn scrub(&self, msg: &str) -> String {
        let mut m = msg.replace(&self.url, &self.public_url());
        if let Some(k) = self.key.as_deref().filter(|k| !k.is_empty()) {
            m = m.replace(k, "***");
        }
        if let Some((userinfo, _)) = self.url.split_once("://").and_then(|(_, r)| r.split_once('@')) {
            if !userinfo.is_empty() && !userinfo.contains('/') {
                m = m.replace(userinfo, "***");
            }
        }
        m
    }

    /// One chat completion with temperature 0; returns the reply's text.
    pub fn chat(&self, content: Vec<Json>) -> Result<String, String> {
        self.chat_raw(content).map_err(|e| self.scrub(&e))
    }

    fn chat_raw(&self, content: Vec<Json>) -> Result<String, String> {
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "messages": [{"role": "user", "content": content}],
        });
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(300))).build().into();
        let mut req = agent.post(format!("{}/chat/completions", self.url)).header("Content-Type", "application/json");
        if let Some(k) = &self.key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        let mut resp = req
            .send(body.to_string())
            .map_err(|e| format!("the language model at {} did not answer: {e}", self.public_url()))?;
        let text = resp.body_mut().read_to_string().map_err(|e| format!("reading the model's answer: {e}"))?;
        let j: Json = serde_json::from_str(&text).map_err(|e| format!("the model's answer is not JSON ({e})"))?;
        j["choices"][0]["message"]["content"].as_str().map(|s| s.to_string()).ok_or_else(|| {
            format!(
                "the model's answer has no choices[0].message.content: {}",
                text.chars().take(200).collect::<String>()
            )
        })
    }
}

/// How a conversation call retries: timeouts, 429 (honouring Retry-After)
/// and 5xx are retried with exponential backoff; other answers are final.
#[derive(Debug, Clone)]
pub struct Retry {
    pub attempts: u32,
    /// The first wait; it doubles each time, up to `max_wait`.
    pub base: Duration,
    pub max_wait: Duration,
    /// How long one request may take.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 6,
            base: Duration::from_secs(2),
            max_wait: Duration::from_secs(60),
            timeout: Duration::from_secs(300),
        }
    }
}

/// One reply of a conversation, and what it cost.
#[derive(Debug, Clone)]
pub struct Reply {
    pub text: String,
    /// The endpoint's `usage` object, when it sends one.
    pub usage: Json,
    /// Attempts it took (1 when the first answered).
    pub attempts: u32,
    /// Function calls the reply makes (endpoints with tool calling).
    pub tool_calls: Vec<ToolCall>,
    /// The assistant message as sent, to carry in the conversation.
    pub message: Json,
}

/// One function call of a reply: its id, name and JSON-text arguments.
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

impl Endpoint {
    /// A whole conversation (`messages` in the OpenAI format) to one reply,
    /// retried as `retry` says. The error says what the last attempt got.
    pub fn converse(
        &self,
        model: &str,
        messages: &[Json],
        tools: Option<&Json>,
        retry: &Retry,
    ) -> Result<Reply, String> {
        let mut body = json!({"model": model, "temperature": 0, "messages": messages});
        if let Some(t) = tools {
            body["tools"] = t.clone();
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(retry.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let mut last = String::new();
        for attempt in 1..=retry.attempts.max(1) {
            let mut req =
                agent.post(format!("{}/chat/completions", self.url)).header("Content-Type", "application/json");
            if let Some(k) = &self.key {
                req = req.header("Authorization", format!("Bearer {k}"));
            }
            let wait = match req.send(body.to_string()) {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map(Duration::from_secs_f64);
                    let text = resp.body_mut().read_to_string().unwrap_or_default();
                    if status == 200 {
                        let j: Json = serde_json::from_str(&text)
                            .map_err(|e| self.scrub(&format!("the model's answer is not JSON ({e})")))?;
                        let message = &j["choices"][0]["message"];
                        let tool_calls: Vec<ToolCall> = message["tool_calls"]
                            .as_array()
                            .map(|calls| {
                                calls
                                    .iter()
                                    .map(|c| ToolCall {
                                        id: c["id"].as_str().unwrap_or("").to_string(),
                                        name: c["function"]["name"].as_str().unwrap_or("").to_string(),
                                        arguments: c["function"]["arguments"].as_str().unwrap_or("").to_string(),
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        let content = match message["content"].as_str() {
                            Some(c) => c.to_string(),
                            None if !tool_calls.is_empty() => String::new(),
                            None => {
                                return Err(self.scrub(&format!(
                                    "the model's answer has no choices[0].message.content: {}",
                                    text.chars().take(200).collect::<String>()
                                )))
                            }
                        };
                        return Ok(Reply {
                            text: content,
                            usage: j["usage"].clone(),
                            attempts: attempt,
                            tool_calls,
                            message: message.clone(),
                        });
                    }
                    last = format!("HTTP {status}: {}", text.chars().take(200).collect::<String>());
                    if status != 429 && status < 500 {
                        return Err(self.scrub(&format!("the language model at {} refused: {last}", self.public_url())));
                    }
                    retry_after
                }
                Err(e) => {
                    last = e.to_string();
                    None
                }
            };
            if attempt < retry.attempts {
                let backoff = retry.base.saturating_mul(1u32 << (attempt - 1).min(16));
                std::thread::sleep(wait.unwrap_or(backoff).min(retry.max_wait));
            }
        }
        Err(self.scrub(&format!(
            "the language model at {} did not answer after {} attempts: {last}",
            self.public_url(),
            retry.attempts
        )))
    }
}

/// `scheme://host:port/path` without user info, query or fragment.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or("");
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// An image as an OpenAI `image_url` content part.
pub fn image_part(img: &Image) -> Result<Json, String> {
    Ok(png_part(&img.to_png()?))
}

/// PNG bytes as an OpenAI `image_url` content part.
pub fn png_part(png: &[u8]) -> Json {
    let b64 = base64::engine::general_purpose::STANDARD.encode(png);
    json!({"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{b64}")}})
}

pub fn text_part(t: &str) -> Json {
    json!({"type": "text", "text": t})
}
