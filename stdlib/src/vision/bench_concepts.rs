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

use super::bench_neurons::{Group, ANDS, GROUPS};
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
