//! The benchmark's concept detectors, trained where investigators look.
//!
//! A concept neuron must show its concept on the stimuli an investigator
//! can give it. EfficientNet-Lite0's ImageNet probabilities do not: on the
//! openmoji drawings (the labelled pictures Assay ships) its summed "cat"
//! probability is at most 0.006 for a drawn cat, below some flags, and its
//! "instrument" group fires on hands. So each concept is a logistic
//! read-out of EfficientNet-Lite0's pooled features (1280), trained on the
//! drawings whose annotations show the concept ([`Group::emoji`]) against
//! every other drawing (about 4,500 in all), and on two-object scenes (each
//! concept's drawings at half size beside another drawing, and each AND
//! pair's drawings side by side), so that a concept is detected in a scene
//! as well as alone. MAIA's concept neurons are an open-vocabulary detector
//! over photographs; these are a detector over what Assay can show.
//!
//! Training is deterministic (fixed pictures, L-BFGS from zero); the model
//! is built once and cached under a key of its definition.

use assay_interpreter::Image;
use image::RgbaImage;

use super::bench_neurons::{Group, ANDS, AND_PRESENT, GROUPS, ORS};
use crate::models::build::{batched, int, GraphBuilder};
use crate::onnx::proto::{tensor_proto::DataType as Dt, ModelProto};
use crate::vision::data::{Dataset, Item};

/// The pooled features the read-outs take.
pub const FEATURES: &str = "/Flatten_output_0";
/// Scenes of two drawings that show no concept, as negatives.
const NEG_SCENES: usize = 300;
/// Scenes per AND pair (the pair's drawings side by side).
pub const AND_SCENES: usize = 3;
/// The read-outs' L2 penalty (scikit-learn's C = 1).
const L2: f64 = 1.0;
/// Half-size parts at these centres (fractions of the width).
const LEFT: f64 = 0.28;
const RIGHT: f64 = 0.72;
const HALF: f64 = 0.5;

/// The groups an annotation shows.
fn groups_of(label: &str) -> Vec<bool> {
    GROUPS.iter().map(|g| g.emoji.contains(&label)).collect()
}

/// One training picture: how to draw it and the groups it shows.
enum Picture {
    /// An emoji on white (its index).
    Alone(usize),
    /// Two emoji at half size, left and right, on white.
    Pair(usize, usize),
}

/// The training pictures in a fixed order, with their groups.
fn pictures(items: &[Item]) -> Vec<(Picture, Vec<bool>)> {
    let label = |i: usize| items[i].label.as_deref().unwrap_or("");
    let usable: Vec<usize> = (0..items.len()).collect();
    let shows = |i: usize| groups_of(label(i));
    let others: Vec<usize> = usable.iter().copied().filter(|&i| !shows(i).iter().any(|&b| b)).collect();
    let union = |a: &[bool], b: &[bool]| a.iter().zip(b).map(|(x, y)| *x || *y).collect::<Vec<bool>>();
    let mut out: Vec<(Picture, Vec<bool>)> = usable.iter().map(|&i| (Picture::Alone(i), shows(i))).collect();
    if others.is_empty() {
        return out;
    }
    // Every concept drawing at half size, left or right in turn, beside an
    // unrelated one (spread over the others by a fixed stride).
    let positives: Vec<usize> = usable.iter().copied().filter(|&i| shows(i).iter().any(|&b| b)).collect();
    for (j, &p) in positives.iter().enumerate() {
        let o = others[(j * 7919) % others.len()];
        let pic = if j % 2 == 0 { Picture::Pair(p, o) } else { Picture::Pair(o, p) };
        out.push((pic, shows(p)));
    }
    for (a, b) in ANDS {
        for k in 0..AND_SCENES {
            let (x, y) = (and_part(items, a, k), and_part(items, b, k));
            if let (Some(x), Some(y)) = (x, y) {
                out.push((Picture::Pair(x, y), union(&shows(x), &shows(y))));
            }
        }
    }
    for k in 0..NEG_SCENES {
        let (x, y) = (others[(k * 2 * 104_729) % others.len()], others[(k * 2 * 104_729 + 52_363) % others.len()]);
        out.push((Picture::Pair(x, y), union(&shows(x), &shows(y))));
    }
    out
}

/// The `k`-th drawing of a group for its AND scenes (its list's drawings
/// in turn): the index of the first emoji with that annotation.
pub fn and_part(items: &[Item], group: &str, k: usize) -> Option<usize> {
    let g: &Group = GROUPS.iter().find(|g| g.name == group)?;
    let want = g.emoji[k % g.emoji.len()];
    items.iter().position(|it| it.label.as_deref() == Some(want))
}

/// Draws a picture at 224x224 on white.
fn draw(data: &Dataset, pic: &Picture) -> Result<Image, String> {
    match pic {
        Picture::Alone(i) => data.read(*i).map(|(img, _, _)| img),
        Picture::Pair(a, b) => {
            let mut canvas = RgbaImage::from_pixel(224, 224, image::Rgba([255, 255, 255, 255]));
            for (i, x) in [(*a, LEFT), (*b, RIGHT)] {
                let (img, _, _) = data.read_on(i, None)?;
                let rgba = RgbaImage::from_raw(img.width, img.height, img.pixels).ok_or("corrupt image buffer")?;
                crate::vision::edit::paste_onto(&mut canvas, &rgba, x, 0.5, HALF);
            }
            Ok(Image::new(224, 224, canvas.into_raw()))
        }
    }
}

/// The scene an AND neuron's truth shows: the two drawings at half size,
/// left and right, as [`pictures`] draws them (for the truth's stimuli).
pub fn scene_parts() -> (f64, f64, f64) {
    (LEFT, RIGHT, HALF)
}

/// EfficientNet-Lite0 ending at its pooled features.
fn features_model(efficientnet: &crate::onnx::proto::ModelProto) -> Result<crate::onnx::model::Model, String> {
    use crate::models::build::batched;
    use crate::onnx::proto::tensor_proto::DataType;
    let mut m = efficientnet.clone();
    let g = m.graph.as_mut().ok_or("EfficientNet has no graph")?;
    g.output = vec![batched(FEATURES, DataType::Float, &[1280])];
    crate::onnx::model::Model::load_bytes(
        "efficientnet-lite0 features",
        &crate::onnx::graph::encode(&m),
        crate::onnx::model::Provider::Cpu,
    )
    .map_err(|e| e.to_string())
}

/// The read-outs: for each group, 1280 weights and a bias, trained on the
/// pictures. Fails if a group's read-out does not separate its training
/// pictures (every picture showing it above every other).
pub fn train(efficientnet: &crate::onnx::proto::ModelProto) -> Result<Vec<(Vec<f64>, f64)>, String> {
    let items = crate::vision::data::emoji_items()?;
    let data = Dataset { name: "openmoji".into(), items: std::sync::Arc::new(items.clone()), sandbox: None };
    let pics = pictures(&items);
    let net = features_model(efficientnet)?;
    let input = efficientnet
        .graph
        .as_ref()
        .and_then(|g| g.input.first())
        .map(|i| i.name().to_string())
        .ok_or("EfficientNet has no input")?;
    let pre = crate::models::efficientnet::PREPROCESS;
    let mut x: Vec<f64> = Vec::with_capacity(pics.len() * 1280);
    for chunk in pics.chunks(64) {
        let mut batch = Vec::with_capacity(chunk.len() * 3 * 224 * 224);
        for (pic, _) in chunk {
            let img = draw(&data, pic)?;
            batch.extend(crate::pixels::preprocess(&img, pre.resize, pre.size, pre.mean, pre.std)?);
        }
        let feed = ndarray::ArrayD::from_shape_vec(vec![chunk.len(), 3, 224, 224], batch).map_err(|e| e.to_string())?;
        let out = net.run_plain(vec![(input.clone(), feed)], &[FEATURES.to_string()]).map_err(|e| e.to_string())?;
        let f = out.get(FEATURES).ok_or("no features")?;
        x.extend(f.iter().map(|v| *v as f64));
    }
    let mut readouts = Vec::new();
    for (gi, g) in GROUPS.iter().enumerate() {
        let y: Vec<bool> = pics.iter().map(|(_, shows)| shows[gi]).collect();
        let (w, b, _) = crate::core::probes::fit_logistic(x.clone(), 1280, &y, L2)?;
        let z: Vec<f64> =
            x.chunks(1280).map(|r| b + r.iter().zip(&w).map(|(a, c)| a * (*c as f32 as f64)).sum::<f64>()).collect();
        let lowest = z.iter().zip(&y).filter(|(_, p)| **p).map(|(v, _)| *v).fold(f64::INFINITY, f64::min);
        let highest = z.iter().zip(&y).filter(|(_, p)| !**p).map(|(v, _)| *v).fold(f64::NEG_INFINITY, f64::max);
        if lowest <= 0.0 || highest >= 0.0 {
            return Err(format!(
                "the \"{}\" read-out does not separate its training pictures at 0.5 (lowest positive logit {lowest:.3}, highest negative {highest:.3})",
                g.name
            ));
        }
        readouts.push((w, b));
    }
    Ok(readouts)
}

/// EfficientNet-Lite0 with one trained read-out per group on its pooled
/// features (`bench_concepts`), combined; output `response` [N, C, 1, 1],
/// one channel per concept neuron.
pub fn concept_model(efficientnet: &ModelProto, readouts: &[(Vec<f64>, f64)]) -> Result<ModelProto, String> {
    if readouts.len() != GROUPS.len() || readouts.iter().any(|(w, _)| w.len() != 1280) {
        return Err(format!("{} read-outs for {} groups", readouts.len(), GROUPS.len()));
    }
    let mut m = efficientnet.clone();
    let g = m.graph.as_mut().ok_or("EfficientNet has no graph")?;
    let mut b = GraphBuilder::default();
    // [1280, groups]: each read-out's weights as a column.
    let mut w = vec![0f32; 1280 * GROUPS.len()];
    for (j, (wj, _)) in readouts.iter().enumerate() {
        for (i, v) in wj.iter().enumerate() {
            w[i * GROUPS.len() + j] = *v as f32;
        }
    }
    let bias: Vec<f32> = readouts.iter().map(|(_, bj)| *bj as f32).collect();
    b.f32("concepts85.weight", &[1280, GROUPS.len()], &w);
    b.f32("concepts85.bias", &[GROUPS.len()], &bias);
    let z = b.node("MatMul", "/concepts85/MatMul", &[FEATURES, "concepts85.weight"], vec![]);
    let z = b.node("Add", "/concepts85/Add", &[&z, "concepts85.bias"], vec![]);
    let p = b.node("Sigmoid", "/concepts85/Sigmoid", &[&z], vec![]);
    let mut sums = std::collections::BTreeMap::new();
    for (j, gr) in GROUPS.iter().enumerate() {
        let at = b.i64(&format!("concepts85.{}.index", gr.name), &[1], &[j as i64]);
        sums.insert(
            gr.name,
            b.node("Gather", &format!("/concepts85/{}/Gather", gr.name), &[&p, &at], vec![int("axis", 1)]),
        );
    }
    let mut order: Vec<String> = GROUPS.iter().map(|g| sums[g.name].clone()).collect();
    for (a, c) in ORS {
        order.push(b.node("Max", &format!("/concepts85/{a}_or_{c}"), &[&sums[*a], &sums[*c]], vec![]));
    }
    // MAIA's AND: the first concept's value when both are present, else
    // small noise in [0, 0.1): here the fractional part of 10,000 times
    // the two detectors' sum, so the same image always gives the same
    // value (runs replay byte for byte).
    let present = b.f32("concepts85.and.present", &[1], &[AND_PRESENT]);
    let spread = b.f32("concepts85.and.spread", &[1], &[10_000.0]);
    let tenth = b.f32("concepts85.and.tenth", &[1], &[0.1]);
    for (a, c) in ANDS {
        let at = format!("/concepts85/{a}_and_{c}");
        let both = b.node("Min", &format!("{at}/Min"), &[&sums[*a], &sums[*c]], vec![]);
        let is_both = b.node("Greater", &format!("{at}/Present"), &[&both, &present], vec![]);
        let sum = b.node("Add", &format!("{at}/Sum"), &[&sums[*a], &sums[*c]], vec![]);
        let spread = b.node("Mul", &format!("{at}/Spread"), &[&sum, &spread], vec![]);
        let floor = b.node("Floor", &format!("{at}/Floor"), &[&spread], vec![]);
        let frac = b.node("Sub", &format!("{at}/Frac"), &[&spread, &floor], vec![]);
        let noise = b.node("Mul", &format!("{at}/Noise"), &[&frac, &tenth], vec![]);
        order.push(b.node("Where", &at, &[&is_both, &sums[*a], &noise], vec![]));
    }
    let refs: Vec<&str> = order.iter().map(String::as_str).collect();
    let all = b.node("Concat", "/concepts85/Concat", &refs, vec![int("axis", 1)]);
    let spatial = b.i64("concepts85.spatial", &[2], &[2, 3]);
    b.node_to("Unsqueeze", "/response", &[&all, &spatial], vec![], "response");
    g.node.extend(b.nodes);
    g.initializer.extend(b.inits);
    g.output = vec![batched("response", Dt::Float, &[order.len() as i64, 1, 1])];
    g.name = Some("synthetic_concepts85".into());
    m.doc_string = Some(format!(
        "Assay's benchmark synthetic neurons: {} concepts, read-outs of EfficientNet-Lite0's pooled features trained on openmoji drawings",
        order.len()
    ));
    Ok(m)
}

/// Changes whenever the concept model's definition does (its cache key).
const CONCEPT_MODEL_VERSION: u32 = 2;

/// The concept model in the cache, trained and built on first use (about
/// 3,000 pictures through EfficientNet-Lite0, a few minutes), under a key
/// of its definition and of EfficientNet's bytes. Returns the path, the
/// bytes and their sha256.
pub fn concept_model_cached() -> Result<(std::path::PathBuf, Vec<u8>, String), String> {
    use sha2::Digest;
    let (net_path, _) = crate::models::efficientnet::provision()?;
    let net_bytes = crate::fetch::read_cached(&net_path)?;
    let groups: Vec<(&str, &[&str])> = GROUPS.iter().map(|g| (g.name, g.emoji)).collect();
    let key = hex::encode(sha2::Sha256::digest(
        format!(
            "{CONCEPT_MODEL_VERSION}|{groups:?}|{ORS:?}|{ANDS:?}|{AND_PRESENT}|{}|openmoji-17.0.0",
            hex::encode(sha2::Sha256::digest(&net_bytes))
        )
        .as_bytes(),
    ));
    let path =
        crate::fetch::cache_dir().join("models").join("synthetic").join(format!("concepts85-{}.onnx", &key[..12]));
    if !path.is_file() {
        let base = crate::onnx::graph::decode(&net_bytes).map_err(|e| e.to_string())?;
        let readouts = train(&base)?;
        let bytes = crate::onnx::graph::encode(&concept_model(&base, &readouts)?);
        crate::fetch::write_atomic(&path, &bytes)?;
    }
    let bytes = crate::fetch::read_cached(&path)?;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    Ok((path, bytes, sha))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::bench_neurons::concepts;

    /// The concept model over a stand-in network whose pooled features are
    /// its input, with read-outs that take one feature each (group j's
    /// probability is sigmoid(x_j)), run on chosen group probabilities.
    fn responses(probs: &[(&str, f32)]) -> Vec<f32> {
        use crate::models::build::{batched, model};
        use crate::onnx::proto::{GraphProto, NodeProto};
        let stub = model(
            GraphProto {
                name: Some("stub".into()),
                node: vec![NodeProto {
                    op_type: Some("Identity".into()),
                    input: vec!["x".into()],
                    output: vec![FEATURES.into()],
                    ..Default::default()
                }],
                input: vec![batched("x", Dt::Float, &[1280])],
                output: vec![batched(FEATURES, Dt::Float, &[1280])],
                ..Default::default()
            },
            "a network whose features are its input".into(),
        );
        let readouts: Vec<(Vec<f64>, f64)> =
            (0..GROUPS.len()).map(|j| ((0..1280).map(|i| if i == j { 1.0 } else { 0.0 }).collect(), 0.0)).collect();
        let m = crate::onnx::model::Model::load_bytes(
            "concepts",
            &crate::onnx::graph::encode(&concept_model(&stub, &readouts).unwrap()),
            crate::onnx::model::Provider::Cpu,
        )
        .unwrap();
        let mut x = vec![-20.0f32; 1280];
        for (name, q) in probs {
            let j = GROUPS.iter().position(|g| g.name == *name).unwrap();
            x[j] = (q / (1.0 - q)).ln();
        }
        let feed = ndarray::ArrayD::from_shape_vec(vec![1, 1280], x).unwrap();
        let out = m.run_plain(vec![("x".into(), feed)], &["response".to_string()]).unwrap();
        out["response"].iter().copied().collect()
    }

    #[test]
    fn an_and_neuron_is_its_first_concept_when_both_are_present_else_small_noise() {
        let names: Vec<String> = concepts().into_iter().map(|c| c.name).collect();
        let at = |n: &str| names.iter().position(|x| x == n).unwrap();
        let (and, dog, or) = (at("dogs_and_balls"), at("dogs"), at("balls_or_dogs"));
        // Both present: the first concept's probability, not the smaller.
        let r = responses(&[("dogs", 0.7), ("balls", 0.9)]);
        assert!((r[and] - r[dog]).abs() < 1e-6 && (r[dog] - 0.7).abs() < 1e-4, "{} {}", r[and], r[dog]);
        assert!((r[or] - 0.9).abs() < 1e-4, "OR is the larger: {}", r[or]);
        // One absent: noise in [0, 0.1), the same for the same image.
        for probs in
            [[("dogs", 0.8), ("balls", 0.3)], [("dogs", 0.02), ("balls", 0.9)], [("dogs", 0.001), ("balls", 0.001)]]
        {
            let r = responses(&probs);
            assert!((0.0..0.1).contains(&r[and]), "{probs:?}: {}", r[and]);
            assert_eq!(r[and].to_bits(), responses(&probs)[and].to_bits(), "{probs:?}");
        }
        // The noise varies from image to image.
        let noise: Vec<f32> = (1..6).map(|k| responses(&[("dogs", 0.01 * k as f32), ("balls", 0.9)])[and]).collect();
        assert!(noise.windows(2).any(|w| w[0] != w[1]), "{noise:?}");
    }
}
