//! describe/summarize against an OpenAI-compatible endpoint. A hosted
//! vision-language model cannot exist in this test, so a real HTTP server on
//! loopback stands in for it: it checks each request's format (path, method,
//! auth header, model, temperature, images as PNG data URLs) and answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine as _;

use crate::support::{temp_with, Test};

struct Seen {
    path: String,
    auth: String,
    body: serde_json::Value,
}

/// Serves `n` requests, then stops.
fn serve(n: usize) -> (String, Arc<Mutex<Vec<Seen>>>, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(n) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            reader.read_line(&mut request_line).expect("request line");
            let (mut len, mut auth) = (0usize, String::new());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("header");
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                let lower = l.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") {
                    auth = l["authorization:".len()..].trim().to_string();
                }
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).expect("body");
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            let images = body["messages"][0]["content"]
                .as_array()
                .map(|c| c.iter().filter(|p| p["type"] == "image_url").count())
                .unwrap_or(0);
            let reply = serde_json::json!({"choices": [{"message": {"role": "assistant", "content": format!("saw {images} image(s)")}}]}).to_string();
            let path = request_line.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            log.lock().expect("log").push(Seen { path, auth, body });
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}", reply.len());
        }
    });
    (url, seen, handle)
}

#[test]
fn describe_and_summarize_send_images_to_the_configured_endpoint() {
    let (url, seen, server) = serve(3);
    let dir = temp_with(&[(
        "d.assay",
        "let a = svg(`<svg viewBox=\"0 0 4 4\"><rect width=\"4\" height=\"4\" fill=\"red\"/></svg>`, width: 8)\n\
         let b = svg(`<svg viewBox=\"0 0 4 4\"><circle cx=\"2\" cy=\"2\" r=\"2\" fill=\"blue\"/></svg>`, width: 8)\n\
         record \"each\", describe([a, b])\n\
         record \"common\", summarize([a, b], prompt: \"What do these share?\")\n",
    )]);
    let out = Test::new(dir.path())
        .env("ASSAY_LLM_URL", &url)
        .env("ASSAY_LLM_MODEL", "test-vlm")
        .env("ASSAY_LLM_KEY", "sk-test")
        .args(["run", "d.assay", "--json"])
        .run();
    server.join().expect("server");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["results"]["records"]["each"], serde_json::json!(["saw 1 image(s)", "saw 1 image(s)"]));
    assert_eq!(j["results"]["records"]["common"], "saw 2 image(s)");
    let seen = seen.lock().expect("log");
    assert_eq!(seen.len(), 3);
    for s in seen.iter() {
        assert_eq!(s.path, "POST /v1/chat/completions");
        assert_eq!(s.auth, "Bearer sk-test");
        assert_eq!(s.body["model"], "test-vlm");
        assert_eq!(s.body["temperature"], 0);
        let content = s.body["messages"][0]["content"].as_array().expect("content parts");
        assert_eq!(content[0]["type"], "text");
        for part in content.iter().skip(1) {
            let url = part["image_url"]["url"].as_str().expect("image url");
            let b64 = url.strip_prefix("data:image/png;base64,").expect("PNG data URL");
            let png = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
            assert_eq!(&png[1..4], b"PNG");
            // Width 8 in the PNG header (big-endian at byte 16).
            assert_eq!(u32::from_be_bytes([png[16], png[17], png[18], png[19]]), 8);
        }
    }
    assert_eq!(seen[2].body["messages"][0]["content"][0]["text"], "What do these share?");
}

#[test]
fn describe_without_an_endpoint_says_how_to_configure_one() {
    let dir = temp_with(&[("d.assay", "record \"x\", describe(svg(`<svg viewBox=\"0 0 1 1\"/>`))\n")]);
    let out = Test::new(dir.path()).env("ASSAY_LLM_URL", "").args(["run", "d.assay", "--json"]).run();
    assert_eq!(out.code, 1);
    let msg = out.json()["diagnostics"][0]["message"].as_str().unwrap_or("").to_string();
    assert!(msg.contains("set ASSAY_LLM_URL"), "{msg}");
}

#[test]
fn a_failing_endpoint_leaves_no_credentials_in_the_record() {
    // A port nothing listens on: the connection is refused and the error
    // quotes the URL. Its user, password, query and the key must not reach
    // results.json, report.html or the terminal.
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let dir = temp_with(&[("d.assay", "record \"x\", describe(svg(`<svg viewBox=\"0 0 1 1\"/>`))\n")]);
    let out = Test::new(dir.path())
        .env("ASSAY_LLM_URL", format!("http://alice:hunter2pw@127.0.0.1:{port}/v1?api_key=sk-querysecret"))
        .env("ASSAY_LLM_MODEL", "m")
        .env("ASSAY_LLM_KEY", "sk-headersecret")
        .args(["run", "d.assay"])
        .run();
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let run = crate::support::runs_of(dir.path(), "d").pop().expect("a run record");
    let mut seen = format!("{}{}", out.stdout, out.stderr);
    for f in ["results.json", "report.html", "manifest.json", "trace.jsonl"] {
        seen.push_str(&std::fs::read_to_string(run.join(f)).expect("record file"));
    }
    assert!(seen.contains("did not answer"), "{seen}");
    for secret in ["hunter2pw", "alice", "sk-querysecret", "sk-headersecret"] {
        assert!(!seen.contains(secret), "`{secret}` leaked:\n{seen}");
    }
}
