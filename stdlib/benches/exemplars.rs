//! Exemplar search cost on EfficientNet-Lite0 over the openmoji drawings:
//! (1) throughput of one exemplar pass for every channel of block 15 against
//! plain inference of the same model on the same images (both read, render
//! and preprocess the same way), timed side by side and interleaved;
//! (2) peak memory of an exemplar pass over 1,000 and 4,000 images, each in
//! a fresh child process. Prints ratios.
//!
//! `cargo bench -p assay-stdlib --bench exemplars`

#![allow(clippy::disallowed_methods, reason = "tests and benchmarks read their fixtures and outputs directly")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

use std::sync::Arc;
use std::time::Instant;

use assay_stdlib::methods::units::Reduce;
use assay_stdlib::onnx::model::{Model, Preprocess, Provider};
use assay_stdlib::vision::data::{emoji_items, Dataset};
use assay_stdlib::vision::exemplars::{batch_tensor, pass, PassSpec};

const LAYER: &str = "/_blocks.15/Relu6_output_0";
const PRE: Preprocess = Preprocess { resize: 256, size: 224, mean: [127.0; 3], std: [128.0; 3] };

fn setup(n: usize) -> (Model, Dataset) {
    let (path, _) = assay_stdlib::models::efficientnet::provision().expect("benchmark setup");
    let bytes = std::fs::read(&path).expect("benchmark setup");
    let m = Model::load(&path, "efficientnet-lite0", &bytes, String::new(), Provider::Cpu).expect("benchmark setup");
    let mut items = emoji_items().expect("benchmark setup");
    items.truncate(n);
    (m, Dataset { name: "openmoji".into(), items: Arc::new(items), sandbox: None })
}

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    // Child mode: one pass over N images, then report peak memory.
    if let Some(n) = std::env::args()
        .nth(1)
        .and_then(|a| a.strip_prefix("--memory=").map(|s| s.parse::<usize>().expect("benchmark setup")))
    {
        let (m, d) = setup(n);
        let spec = PassSpec { k: 12, bottom: 0, quantiles: false, seed: 0, batch: 32 };
        let res = pass(&m, LAYER, Reduce::Max, PRE, &d, &spec, 0..n, &mut |_, _| {}).expect("benchmark setup");
        assert_eq!(res.top.len(), 1152);
        println!("{}", peak_kib());
        return;
    }
    let n = 512;
    let (m, d) = setup(n);
    let batch = 32;
    let out = m.output_names();
    let plain = || {
        let mut start = 0;
        while start < n {
            let end = (start + batch).min(n);
            let x = batch_tensor(&d, start..end, PRE, &mut |_, _| {}).expect("benchmark setup");
            m.run_plain(vec![("input".into(), x)], &out).expect("benchmark setup");
            start = end;
        }
    };
    let exemplars = || {
        let spec = PassSpec { k: 12, bottom: 0, quantiles: false, seed: 0, batch };
        pass(&m, LAYER, Reduce::Max, PRE, &d, &spec, 0..n, &mut |_, _| {}).expect("benchmark setup");
    };
    plain();
    exemplars();
    let (mut tp, mut te) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let s = Instant::now();
        plain();
        tp.push(s.elapsed().as_secs_f64());
        let s = Instant::now();
        exemplars();
        te.push(s.elapsed().as_secs_f64());
    }
    tp.sort_by(f64::total_cmp);
    te.sort_by(f64::total_cmp);
    let (p, e) = (tp[1], te[1]);
    println!("EfficientNet-Lite0 on {n} openmoji drawings (rendered, resized, cropped), batch {batch}, median of 3 interleaved rounds:");
    println!("  plain inference:                      {p:.2} s  ({:.1} images/s)", n as f64 / p);
    println!("  exemplars for all 1152 channels of block 15 (k = 12): {e:.2} s  ({:.1} images/s)", n as f64 / e);
    println!("ratio exemplars / plain: {:.3}x", e / p);
    let exe = std::env::current_exe().expect("benchmark setup");
    let mem = |n: usize| -> u64 {
        let o = std::process::Command::new(&exe).arg(format!("--memory={n}")).output().expect("benchmark setup");
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(0)
    };
    let (m1, m4) = (mem(1000), mem(4000));
    println!(
        "peak memory of one exemplar pass: 1,000 images {:.0} MiB, 4,000 images {:.0} MiB, ratio {:.3}x",
        m1 as f64 / 1024.0,
        m4 as f64 / 1024.0,
        m4 as f64 / m1 as f64
    );
}
