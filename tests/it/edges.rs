//! Every registered tool, called with edge values for each parameter (0,
//! -1, NaN, infinities, 2^32, 1e15, empty and degenerate lists and
//! tensors, hostile strings, the wrong kind of handle), through the real
//! command line with small budgets. Each call must end with a result or a
//! diagnostic, never a panic, an abort or a hang. Generated from the
//! registry, so a new tool is covered the day it is added.

use std::time::{Duration, Instant};

use assay_interpreter::{Default as ParamDefault, Type};

use crate::support::{temp_with, Test};

const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x56, 0x1b, 0xb7,
    0x3d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

const IMAGE: &str = "svg(`<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 2 2\"/>`, width: 2)";

fn handle(kind: &str) -> &'static str {
    match kind {
        "model" => "model(\"planted\")",
        "dataset" => "images(\"*.png\")",
        _ => "none",
    }
}

/// A plain value of the type, used for the parameters not under test.
fn typical(t: &Type) -> String {
    match t {
        Type::Num => "1".into(),
        Type::Str => "\"a\"".into(),
        Type::Bool => "true".into(),
        Type::List(_) => "[1, 2]".into(),
        Type::Record(_) => "{}".into(),
        Type::Range => "0..2".into(),
        Type::Tensor => "zeros([1, 2])".into(),
        Type::Image => IMAGE.into(),
        Type::Func => "x => x".into(),
        Type::Handle(k) => handle(k.name()).into(),
        Type::OneOf(ts) => ts.iter().find(|t| !matches!(t, Type::None)).map(typical).unwrap_or_else(|| "none".into()),
        Type::Any | Type::None | Type::Module => "1".into(),
    }
}

/// The edge values for a parameter of this type.
fn edges(t: &Type) -> Vec<String> {
    let nums = ["0", "-1", "0/0", "1/0", "-1/0", "4294967296", "1e15", "0.5"];
    let v: Vec<String> = match t {
        Type::Num => nums.iter().map(|s| s.to_string()).collect(),
        Type::Str => {
            vec!["\"\"".into(), "\"../../etc/shadow\"".into(), "\"/dev/zero\"".into(), "\"\\u{1b}[2J\"".into()]
        }
        Type::Bool => vec![],
        Type::List(_) => {
            vec!["[]".into(), "[0/0]".into(), "[[]]".into(), "[1e15]".into(), "[4294967296, 4294967296]".into()]
        }
        Type::Record(_) => vec!["{}".into(), "{x: 0/0}".into()],
        Type::Range => vec!["0..0".into(), "0..4294967296".into()],
        Type::Tensor => {
            vec!["zeros([0])".into(), "zeros([1, 0])".into(), "tensor([0/0])".into(), "zeros([0, 3, 8, 8])".into()]
        }
        Type::Image => vec![],
        Type::Func => vec!["x => 1/0".into(), "x => none".into()],
        Type::Handle(k) => ["model", "dataset"]
            .iter()
            .filter(|o| **o != k.name())
            .map(|o| handle(o).to_string())
            .chain(["none".into()])
            .collect(),
        Type::OneOf(ts) => {
            let mut all: Vec<String> = ts.iter().flat_map(edges).collect();
            all.dedup();
            all
        }
        Type::Any | Type::None | Type::Module => {
            let mut v: Vec<String> = nums.iter().map(|s| s.to_string()).collect();
            v.extend(["[]".into(), "\"\"".into(), "none".into(), "zeros([0])".into()]);
            v
        }
    };
    v
}

#[test]
fn every_tool_survives_edge_values_for_every_parameter() {
    let registry = assay_stdlib::registry();
    let t = temp_with(&[]);
    std::fs::write(t.path().join("a.png"), PNG_1X1).unwrap();
    let mut cases = Vec::new();
    for sig in registry.signatures() {
        for (i, p) in sig.params.iter().enumerate() {
            for e in edges(&p.ty) {
                let mut args = Vec::new();
                for (j, q) in sig.params.iter().enumerate() {
                    let required = matches!(q.default, ParamDefault::Required);
                    if j == i {
                        args.push(if required { e.clone() } else { format!("{}: {e}", q.name) });
                    } else if required {
                        args.push(typical(&q.ty));
                    }
                }
                cases.push((sig.name, format!("record \"r\", {}({})\n", sig.name, args.join(", "))));
            }
        }
    }
    let total = cases.len();
    assert!(total > 500, "only {total} cases");
    // Two at a time: the machines that run this have two cores.
    let cases = std::sync::Mutex::new(cases.into_iter().enumerate().collect::<Vec<_>>());
    let failures = std::sync::Mutex::new(Vec::new());
    let slowest = std::sync::Mutex::new((Duration::ZERO, String::new()));
    // Cases that passed the checker and so reached the tool itself.
    let ran = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some((n, (tool, script))) = cases.lock().unwrap().pop() else { break };
                let name = format!("e{n}.assay");
                std::fs::write(t.path().join(&name), &script).unwrap();
                let started = Instant::now();
                let out = Test::new(t.path()).args(["run", &name, "--memory", "1G", "--timeout", "60s"]).run();
                let took = started.elapsed();
                let all = format!("{}{}", out.stdout, out.stderr);
                let bad = all.contains("internal error")
                    || all.contains("assay::crashed")
                    || all.contains("assay::budget-time")
                    || ![0, 1, 3].contains(&out.code);
                if all.contains(" → runs/") {
                    ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if bad {
                    failures.lock().unwrap().push(format!("{tool}: {script}{all}"));
                }
                let mut sl = slowest.lock().unwrap();
                if took > sl.0 {
                    *sl = (took, script.clone());
                }
                let _ = std::fs::remove_file(t.path().join(&name));
            });
        }
    });
    let (took, script) = slowest.into_inner().unwrap();
    let ran = ran.into_inner();
    eprintln!("{total} edge cases, {ran} past the checker into the tool; slowest: {took:?}: {script}");
    assert!(ran * 2 > total, "most edge values should reach the tools, not stop at the checker");
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{} edge cases failed:\n{}", failures.len(), failures.join("\n---\n"));
}
