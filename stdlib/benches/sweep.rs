//! The full attention-head sweep on SmolLM2-135M (30 layers x 9 heads), on
//! an indirect-object prompt and its name-swapped counterfactual: batched
//! (one rewritten graph, one component per batch row) against one run per
//! head through the same graph. Both are timed in this process, the batched
//! sweep twice around the per-head one; effects must agree. Prints the ratio.
//!
//! `cargo bench -p assay-stdlib --bench sweep`

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

use std::collections::BTreeMap;
use std::time::Instant;

use assay_stdlib::onnx::model::{Model, Provider};
use assay_stdlib::onnx::sweep::{Component, Sweep};
use assay_stdlib::onnx::tools::encode_batch;
use ndarray::ArrayD;

fn main() {
    let (path, tok_path) = assay_stdlib::models::smollm::provision().expect("model");
    let bytes = std::fs::read(&path).expect("benchmark setup");
    let mut m = Model::load(&path, "smollm2-135m", &bytes, String::new(), Provider::Cpu).expect("load");
    let tok = tokenizers::Tokenizer::from_file(&tok_path).expect("benchmark setup");
    m.tokenizer = Some(std::sync::Arc::new(tok.clone()));
    let target = "When Mary and John went to the store, John gave a drink to";
    let source = "When Mary and John went to the store, Mary gave a drink to";
    let t = encode_batch(&tok, &[target.to_string()]).expect("benchmark setup");
    let s = encode_batch(&tok, &[source.to_string()]).expect("benchmark setup");
    assert_eq!(t.shape(), s.shape());
    let mary = tok.encode(" Mary", false).expect("benchmark setup").get_ids()[0] as usize;
    let john = tok.encode(" John", false).expect("benchmark setup").get_ids()[0] as usize;
    let names: Vec<String> = (0..30).map(|l| format!("/model/layers.{l}/self_attn/heads_output_0")).collect();
    let src = m.capture(vec![("input_ids".into(), s)], &names).expect("benchmark setup");
    let mut components = Vec::new();
    for n in &names {
        for h in 0..9 {
            components.push(Component { tensor: n.clone(), index: components.len(), cols: (h * 64, (h + 1) * 64) });
        }
    }
    let sweep = Sweep { model: &m, target: vec![("input_ids".into(), t)], source: src, components, positions: None };
    let diff = |o: &BTreeMap<String, ArrayD<f32>>| {
        let l = &o["logits"];
        let last = l.shape()[1] - 1;
        l[[0, last, mary]] - l[[0, last, john]]
    };
    let run = |batch: usize| {
        let n = sweep.components.len();
        let mut effects = vec![0f32; n];
        let mut start = 0;
        let began = Instant::now();
        while start < n {
            let rows: Vec<usize> = (start..(start + batch).min(n)).collect();
            for (r, o) in rows.iter().zip(sweep.run_rows(&rows).expect("benchmark setup")) {
                effects[*r] = diff(&o);
            }
            start += batch;
        }
        (began.elapsed().as_secs_f64(), effects)
    };
    // Warm up: the rewritten session is built on first use.
    run(32);
    let (b1, e1) = run(32);
    let (one, e_one) = run(1);
    let (b2, _) = run(32);
    let batched = b1.min(b2);
    let max_gap = e1.iter().zip(&e_one).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!("SmolLM2-135M head sweep, 270 heads, prompt of {} tokens:", sweep.target[0].1.shape()[1]);
    println!("  batched (32 heads per run, 9 runs): {batched:.2} s  (the two timings: {b1:.2} s, {b2:.2} s)");
    println!("  one run per head (270 runs):        {one:.2} s");
    println!("ratio one-per-head / batched: {:.2}x", one / batched);
    println!("largest difference between the two sweeps' logit differences: {max_gap:e}");
    assert!(max_gap < 1e-3, "batched and one-per-head sweeps disagree");
}
