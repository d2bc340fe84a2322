//! The full attention-head sweep on SmolLM2-135M (30 layers x 9 heads), on
//! an indirect-object prompt and its name-swapped counterfactual, five ways,
//! interleaved in one process (best of two each): one run per head with
//! logits at every position (the plain loop a notebook would write); batched
//! (27 heads per run, the layers before a batch's first patched head run
//! once) with logits at every position, and at the last position only; and
//! with the tokens both prompts share run once through the KV cache
//! (`Sweep::share_prefix`), batched and one run per head. Effects must
//! agree. Prints the ratios; `SWEEP_BATCHES=9,27,54` instead times the
//! fastest sweep at those batch sizes.
//!
//! `cargo bench -p assay-stdlib --bench sweep`

#![allow(clippy::disallowed_methods, reason = "tests and benchmarks read their fixtures and outputs directly")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

use std::collections::BTreeMap;
use std::time::Instant;

use assay_stdlib::methods::sweep::{Component, Sweep};
use assay_stdlib::onnx::handle::encode_batch;
use assay_stdlib::onnx::model::{Model, Provider};
use ndarray::ArrayD;

fn main() {
    let (path, tok_path) = assay_stdlib::models::smollm::provision().expect("model");
    let bytes = std::fs::read(&path).expect("benchmark setup");
    let m = Model::load(&path, "smollm2-135m", &bytes, String::new(), Provider::Cpu).expect("load");
    let tok = tokenizers::Tokenizer::from_file(&tok_path).expect("benchmark setup");
    let target = "When Mary and John went to the store, John gave a drink to";
    let source = "When Mary and John went to the store, Mary gave a drink to";
    let t: ArrayD<f32> = encode_batch(&tok, &[target.to_string()]).expect("benchmark setup");
    let s: ArrayD<f32> = encode_batch(&tok, &[source.to_string()]).expect("benchmark setup");
    assert_eq!(t.shape(), s.shape());
    let mary = tok.encode(" Mary", false).expect("benchmark setup").get_ids()[0] as usize;
    let john = tok.encode(" John", false).expect("benchmark setup").get_ids()[0] as usize;
    let names: Vec<String> = (0..30).map(|l| format!("/model/layers.{l}/self_attn/heads_output_0")).collect();
    let src = m.capture(vec![("input_ids".into(), s.clone())], &names).expect("benchmark setup");
    let mut components = Vec::new();
    for n in &names {
        for h in 0..9 {
            components.push(Component { tensor: n.clone(), index: components.len(), cols: (h * 64, (h + 1) * 64) });
        }
    }
    let sweep = |last_position, shared: bool| {
        let mut sw = Sweep {
            model: &m,
            target: vec![("input_ids".into(), t.clone())],
            source: src.clone(),
            components: components.clone(),
            positions: None,
            last_position,
            prefix: None,
        };
        if shared {
            let len = sw.share_prefix(&[("input_ids".into(), s.clone())]).expect("benchmark setup");
            assert!(len > 0, "the prompts share a start");
        }
        sw
    };
    let diff = |o: &BTreeMap<String, ArrayD<f32>>| {
        let l = &o["logits"];
        let last = l.shape()[1] - 1;
        l[[0, last, mary]] - l[[0, last, john]]
    };
    let run = |sweep: &Sweep, batch: usize| {
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
    let (full, last, shared) = (sweep(false, false), sweep(true, false), sweep(true, true));
    if let Ok(list) = std::env::var("SWEEP_BATCHES") {
        run(&shared, 27);
        let Ok(batches) = list.split(',').map(|b| b.trim().parse::<usize>()).collect::<Result<Vec<_>, _>>() else {
            eprintln!("SWEEP_BATCHES must be batch sizes separated by commas, e.g. 9,27,54; got `{list}`");
            std::process::exit(1);
        };
        for b in batches.into_iter().filter(|b| *b > 0) {
            let (t1, _) = run(&shared, b);
            let (t2, _) = run(&shared, b);
            println!("batch {b}: {:.2} s", t1.min(t2));
        }
        return;
    }
    let batch = 27;
    let variants = [(&full, 1), (&full, batch), (&last, batch), (&shared, batch), (&shared, 1)];
    // Warm up: each rewritten session is built, and its broadcast probe run, on first use.
    for (s, b) in variants {
        run(s, b);
    }
    // Interleaved, twice each; the faster of the two counts.
    let mut times = [f64::MAX; 5];
    let mut effects = Vec::new();
    for _ in 0..2 {
        for (i, (s, b)) in variants.into_iter().enumerate() {
            let (secs, e) = run(s, b);
            times[i] = times[i].min(secs);
            effects.push(e);
        }
    }
    let [one, batched, batched_last, batched_shared, one_shared] = times;
    let max_gap =
        effects.iter().flat_map(|e| e.iter().zip(&effects[0]).map(|(a, b)| (a - b).abs())).fold(0f32, f32::max);
    let prefix = shared.prefix.as_ref().map_or(0, |p| p.len);
    println!(
        "SmolLM2-135M head sweep, 270 heads, prompt of {} tokens, {prefix} shared (best of 2 each, interleaved):",
        t.shape()[1]
    );
    println!("  one run per head, logits at every position (the plain loop):   {one:.2} s");
    println!("  batched ({batch} per run), logits at every position:             {batched:.2} s");
    println!("  batched ({batch} per run), last position:                        {batched_last:.2} s");
    println!("  batched ({batch} per run), last position, shared start run once: {batched_shared:.2} s");
    println!("  one run per head, last position, shared start run once:        {one_shared:.2} s");
    println!("ratio plain loop / batched, every position:                   {:.2}x", one / batched);
    println!("ratio plain loop / batched, last position:                    {:.2}x", one / batched_last);
    println!("ratio plain loop / batched, last position, shared start:      {:.2}x", one / batched_shared);
    println!("ratio one per head / batched, both last position + shared start: {:.2}x", one_shared / batched_shared);
    println!("largest difference between the sweeps' logit differences: {max_gap:e}");
    assert!(max_gap < 1e-3, "the sweeps disagree");
}
