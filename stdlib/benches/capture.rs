//! Capture overhead on EfficientNet-Lite0: wall time of a batch with one
//! layer exposed, and with every ReLU6 (Clip) output exposed, against plain
//! inference of the unmodified model, on the same images in the same
//! process. Captured tensors stay in ONNX Runtime's buffers (as the
//! `capture` tool leaves them); the last configuration also reads every
//! captured value once. Configurations are interleaved round by round so machine noise
//! hits all of them alike; medians are compared. Prints ratios.
//!
//! `cargo bench -p assay-stdlib --bench capture`

#![allow(clippy::disallowed_methods, reason = "tests and benchmarks read their fixtures and outputs directly")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

use std::time::Instant;

use assay_stdlib::onnx::{graph, model::Model};
use assay_stdlib::vision;
use ndarray::{Array4, ArrayD};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let (path, _) = assay_stdlib::models::efficientnet::provision().expect("model");
    let bytes = std::fs::read(&path).expect("benchmark setup");
    let m = Model::load(&path, "efficientnet-lite0", &bytes, String::new(), assay_stdlib::onnx::model::Provider::Cpu)
        .expect("load");
    let photos = vision::photo_files().expect("photos");
    let batch = 16;
    let mut data = Vec::new();
    for i in 0..batch {
        let p = &photos[i % photos.len()].path;
        let img = vision::decode(&std::fs::read(p).expect("benchmark setup"), "photo").expect("benchmark setup");
        data.extend(assay_stdlib::pixels::preprocess(&img, 256, 224, [127.0; 3], [128.0; 3]).expect("benchmark setup"));
    }
    let x: ArrayD<f32> = Array4::from_shape_vec((batch, 3, 224, 224), data).expect("benchmark setup").into_dyn();
    let feeds = || vec![("input".to_string(), x.clone())];
    // The peer comparison (benches/peers/run.sh) feeds Python the same batch.
    if let Some(p) = std::env::var_os("ASSAY_BENCH_INPUT_NPY") {
        std::fs::write(p, assay_interpreter::npy_f32(x.shape(), x.iter().copied())).expect("write the batch");
    }

    let layer = "/_blocks.15/Relu6_output_0".to_string();
    let clips: Vec<String> = graph::sites(&m.proto)
        .into_iter()
        .filter(|s| matches!(&s.kind, graph::Kind::Node { op, .. } if op == "Clip"))
        .map(|s| s.name)
        .collect();
    let every: Vec<String> = graph::sites(&m.proto)
        .into_iter()
        .filter(|s| matches!(&s.kind, graph::Kind::Node { .. }))
        .map(|s| s.name)
        .collect();
    let out = m.output_names();
    let plain = || {
        m.run_plain(feeds(), &out).expect("benchmark setup");
    };
    let one = || {
        m.capture_lazy(feeds(), std::slice::from_ref(&layer)).expect("benchmark setup");
    };
    let all = || {
        m.capture_lazy(feeds(), &clips).expect("benchmark setup");
    };
    let everything = || {
        m.capture_lazy(feeds(), &every).expect("benchmark setup");
    };
    // One step of an exemplar pass over a layer: the spatial maximum of
    // every channel computed inside the graph (what `exemplars` runs per batch).
    let exemplar_step = || {
        m.reduced(feeds(), &layer, "ReduceMax", &[2, 3]).expect("benchmark setup");
    };
    let all_read = || {
        let out = m.capture_lazy(feeds(), &clips).expect("benchmark setup");
        let sum: f64 = out.values().map(|t| t.iter().map(|x| *x as f64).sum::<f64>()).sum();
        std::hint::black_box(sum);
    };
    // Warm up: sessions are built on first use.
    plain();
    one();
    all();
    everything();
    let rounds = 15;
    let (mut tp, mut t1, mut ta, mut te, mut tr) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut tx = Vec::new();
    for _ in 0..rounds {
        for (f, t) in [
            (&plain as &dyn Fn(), &mut tp),
            (&one, &mut t1),
            (&all, &mut ta),
            (&everything, &mut te),
            (&all_read, &mut tr),
        ] {
            let s = Instant::now();
            f();
            t.push(s.elapsed().as_secs_f64());
        }
    }
    let (p, o, a, e, r) =
        (median(tp.clone()), median(t1.clone()), median(ta.clone()), median(te.clone()), median(tr.clone()));
    // The exemplar step in rounds of its own with plain inference: a model
    // keeps only a few rewritten sessions, and a fourth would evict one
    // above on every round.
    exemplar_step();
    let mut tp2 = Vec::new();
    for _ in 0..rounds {
        for (f, t) in [(&plain as &dyn Fn(), &mut tp2), (&exemplar_step, &mut tx)] {
            let s = Instant::now();
            f();
            t.push(s.elapsed().as_secs_f64());
        }
    }
    let x_step = median(tx.clone()) * p / median(tp2.clone());
    let tx: Vec<f64> = tx.iter().zip(&tp2).map(|(x, q)| x / q * p).collect();
    // Machine-readable lines for benches/peers/run.sh: config, median, min, max.
    for (k, v) in
        [("plain", &tp), ("one layer", &t1), ("all ReLU6", &ta), ("every tensor", &te), ("exemplar step", &tx)]
    {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        println!("RESULT assay|{k}|{:.6}|{lo:.6}|{hi:.6}", median(v.clone()));
    }
    println!("EfficientNet-Lite0, batch {batch}, {rounds} interleaved rounds, median seconds per batch:");
    println!("  plain inference              {p:.4} s  ({:.1} images/s)", batch as f64 / p);
    println!("  capture one layer ({layer}, [N, 1152, 7, 7])  {o:.4} s");
    println!("  capture all {} ReLU6 outputs  {a:.4} s", clips.len());
    println!("  capture every node output ({} tensors)  {e:.4} s", every.len());
    println!("  capture all ReLU6 outputs and read every value  {r:.4} s");
    println!("  exemplar pass step (spatial max of every channel of {layer}, in the graph; scaled by its own rounds' plain time)  {x_step:.4} s");
    println!("ratio exemplar step / plain: {:.3}x", x_step / p);
    println!("ratio one layer / plain: {:.3}x", o / p);
    println!("ratio all ReLU6 / plain: {:.3}x", a / p);
    println!("ratio every tensor / plain: {:.3}x", e / p);
    println!("ratio all ReLU6 read / plain: {:.3}x", r / p);
}
