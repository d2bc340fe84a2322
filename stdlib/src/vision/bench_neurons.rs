//! The benchmark's synthetic neurons at MAIA's scale: 91 with MAIA's mix
//! (53 single-concept, 18 OR, 20 AND), from three kinds of detector Assay
//! runs in ONNX Runtime:
//! - the 8 low-level filter neurons of `synthetic.rs`;
//! - 39 concepts that are groups of EfficientNet-Lite0's ImageNet classes
//!   (a group's summed probability); OR is the larger of two groups, AND
//!   MAIA's: the first group's probability when both are present (above
//!   [`AND_PRESENT`]), else small noise in [0, 0.1) that depends only on
//!   the image;
//! - 6 emoji-annotation concepts: the largest cosine similarity between a
//!   16x16 colour thumbnail of the image and those of the openmoji drawings
//!   whose annotation names the concept (hearts, flags, ...).
//!
//! Each has its written ground truth.

use crate::models::build::{batched, int, GraphBuilder};
use crate::onnx::proto::{tensor_proto::DataType, ModelProto};

/// A concept: its name, its ground truth in words, and its ImageNet class
/// indices (the standard ImageNet-1k order EfficientNet-Lite0 uses).
pub struct Group {
    pub name: &'static str,
    pub description: &'static str,
    pub classes: &'static [usize],
}

macro_rules! range {
    ($a:expr, $b:expr) => {{
        const N: usize = $b - $a + 1;
        const R: [usize; N] = {
            let mut r = [0; N];
            let mut i = 0;
            while i < N {
                r[i] = $a + i;
                i += 1;
            }
            r
        };
        &R
    }};
}

pub const GROUPS: &[Group] = &[
    Group {
        name: "cat",
        description: "cats (tabby, tiger cat, Persian, Siamese, Egyptian cat)",
        classes: range!(281, 285),
    },
    Group {
        name: "ball",
        description:
            "balls used in sports (soccer ball, basketball, baseball, tennis ball, volleyball, golf ball, ...)",
        classes: &[429, 430, 522, 574, 722, 768, 805, 852, 890],
    },
    Group { name: "cup", description: "cups of coffee (espresso, cup, coffee mug)", classes: &[504, 967, 968] },
    Group { name: "dog", description: "dogs of any breed", classes: range!(151, 268) },
    Group { name: "wild_canine", description: "wolves, coyotes, dingoes, hyenas and foxes", classes: range!(269, 280) },
    Group {
        name: "big_cat",
        description: "big cats (cougar, lynx, leopard, jaguar, lion, tiger, cheetah)",
        classes: range!(286, 293),
    },
    Group { name: "bear", description: "bears (brown, black, polar, sloth bear)", classes: range!(294, 297) },
    Group { name: "primate", description: "apes and monkeys", classes: range!(365, 384) },
    Group { name: "elephant", description: "elephants", classes: &[101, 385, 386] },
    Group {
        name: "hoofed_animal",
        description: "hoofed animals (horses, zebras, pigs, cattle, sheep, goats, antelopes, camels, llamas)",
        classes: range!(339, 355),
    },
    Group {
        name: "small_mammal",
        description: "rabbits, hares, hamsters, squirrels, beavers and guinea pigs",
        classes: range!(330, 338),
    },
    Group {
        name: "bird",
        description: "birds of any kind",
        classes: &[
            7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 80, 81, 82, 83, 84, 85, 86, 87, 88,
            89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137,
            138, 139, 140, 141, 142, 143, 144, 145, 146,
        ],
    },
    Group {
        name: "fish",
        description: "fish (tench, goldfish, sharks, rays, eels, salmon, pufferfish, ...)",
        classes: &[0, 1, 2, 3, 4, 5, 6, 389, 390, 391, 392, 393, 394, 395, 396, 397],
    },
    Group { name: "whale_or_seal", description: "whales, dugongs and sea lions", classes: range!(147, 150) },
    Group { name: "amphibian", description: "salamanders, newts and frogs", classes: range!(25, 32) },
    Group { name: "turtle", description: "turtles and tortoises", classes: range!(33, 37) },
    Group {
        name: "lizard",
        description: "lizards (geckos, iguanas, chameleons, Komodo dragons, ...)",
        classes: range!(38, 48),
    },
    Group { name: "crocodile", description: "crocodiles and alligators", classes: &[49, 50] },
    Group { name: "snake", description: "snakes", classes: range!(52, 68) },
    Group { name: "spider", description: "spiders, scorpions and ticks", classes: range!(70, 78) },
    Group {
        name: "insect",
        description: "insects (beetles, flies, bees, ants, grasshoppers, dragonflies, ...), not butterflies",
        classes: range!(300, 320),
    },
    Group { name: "butterfly", description: "butterflies", classes: range!(321, 326) },
    Group { name: "crustacean", description: "crabs, lobsters and crayfish", classes: range!(118, 126) },
    Group {
        name: "sea_creature",
        description: "jellyfish, anemones, corals, snails, starfish, sea urchins and cucumbers",
        classes: &[107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 327, 328, 329],
    },
    Group {
        name: "car",
        description: "cars (taxis, convertibles, jeeps, limousines, minivans, sports and racing cars, ...)",
        classes: &[407, 436, 468, 511, 609, 627, 656, 661, 717, 751, 817],
    },
    Group {
        name: "truck",
        description: "trucks (fire engines, garbage trucks, moving vans, tow trucks, trailer trucks, ...)",
        classes: &[555, 569, 675, 734, 864, 867],
    },
    Group {
        name: "boat",
        description: "boats and ships",
        classes: &[472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 833, 871, 914],
    },
    Group {
        name: "aircraft",
        description: "aircraft (airliners, airships, warplanes, wings, the space shuttle)",
        classes: &[404, 405, 812, 895, 908],
    },
    Group {
        name: "train",
        description: "trains, locomotives, trams and railway cars",
        classes: &[466, 547, 565, 705, 820, 829],
    },
    Group {
        name: "cycle",
        description: "bicycles, tricycles, unicycles, mopeds and scooters",
        classes: &[444, 665, 670, 671, 870, 880],
    },
    Group {
        name: "instrument",
        description: "musical instruments",
        classes: &[
            401, 402, 420, 432, 486, 513, 541, 546, 558, 566, 577, 579, 593, 594, 641, 642, 683, 684, 687, 699, 776,
            822, 875, 881, 889,
        ],
    },
    Group {
        name: "fruit",
        description: "fruit (apples, strawberries, oranges, lemons, figs, pineapples, bananas, pomegranates, ...)",
        classes: range!(948, 957),
    },
    Group {
        name: "vegetable",
        description: "vegetables (cabbage, broccoli, cauliflower, squash, cucumber, artichoke, peppers, ...)",
        classes: range!(936, 946),
    },
    Group {
        name: "dish",
        description:
            "prepared food (guacamole, soups, ice cream, bread, bagels, burgers, hot dogs, pizza, burritos, ...)",
        classes: &[924, 925, 926, 927, 928, 929, 930, 931, 932, 933, 934, 935, 959, 962, 963, 964, 965],
    },
    Group {
        name: "mushroom",
        description: "mushrooms and other fungi",
        classes: &[947, 991, 992, 993, 994, 995, 996, 997],
    },
    Group {
        name: "building",
        description: "buildings (castles, churches, mosques, palaces, barns, greenhouses, yurts, ...)",
        classes: &[425, 483, 497, 498, 500, 580, 663, 668, 698, 727, 832, 915],
    },
    Group {
        name: "clock",
        description: "clocks and watches (analog, digital, wall clocks, hourglasses, sundials, stopwatches)",
        classes: &[409, 530, 531, 604, 826, 835, 892],
    },
    Group {
        name: "computer",
        description: "computers and screens (keyboards, desktops, laptops, monitors, mice, phones, televisions)",
        classes: &[487, 508, 527, 590, 620, 664, 673, 681, 782, 851],
    },
    Group {
        name: "landscape",
        description:
            "natural landscapes (alps, cliffs, coral reefs, geysers, lakesides, seashores, valleys, volcanoes)",
        classes: &[970, 972, 973, 974, 975, 976, 977, 978, 979, 980],
    },
];

/// OR neurons: either group.
pub const ORS: &[(&str, &str)] = &[
    ("dog", "cat"),
    ("car", "boat"),
    ("fruit", "vegetable"),
    ("bird", "aircraft"),
    ("fish", "boat"),
    ("snake", "lizard"),
    ("clock", "computer"),
    ("bear", "dog"),
    ("instrument", "computer"),
    ("train", "truck"),
    ("butterfly", "bird"),
    ("mushroom", "dish"),
    ("building", "landscape"),
    ("spider", "insect"),
    ("primate", "bear"),
    ("ball", "dog"),
    ("cup", "fruit"),
    ("turtle", "crocodile"),
];

/// A concept is present in a picture, for an AND neuron, when its group's
/// probability is above this.
pub const AND_PRESENT: f32 = 0.1;

/// AND neurons: both groups in one picture.
pub const ANDS: &[(&str, &str)] = &[
    ("dog", "ball"),
    ("cat", "dog"),
    ("dog", "car"),
    ("fruit", "cup"),
    ("dish", "cup"),
    ("car", "building"),
    ("boat", "landscape"),
    ("computer", "cup"),
    ("clock", "building"),
    ("cycle", "dog"),
    ("train", "building"),
    ("bear", "fish"),
    ("insect", "fruit"),
    ("butterfly", "mushroom"),
    ("fruit", "vegetable"),
    ("truck", "car"),
    ("bird", "fish"),
    ("instrument", "cat"),
    ("primate", "fruit"),
    ("elephant", "landscape"),
];

/// Emoji-annotation concepts: a name and the word the annotations contain.
pub const EMOJI_CONCEPTS: &[(&str, &str, &str)] = &[
    ("emoji_heart", "heart", "heart symbols drawn like the openmoji hearts (annotations with \"heart\")"),
    ("emoji_flag", "flag", "flags drawn like the openmoji flags (annotations with \"flag\")"),
    ("emoji_clock", "clock", "clock faces drawn like the openmoji clocks (annotations with \"clock\")"),
    ("emoji_moon", "moon", "moons drawn like the openmoji moons (annotations with \"moon\")"),
    ("emoji_arrow", "arrow", "arrows drawn like the openmoji arrows (annotations with \"arrow\")"),
    ("emoji_star", "star", "stars drawn like the openmoji stars (annotations with \"star\")"),
];

/// Templates per emoji concept (the first by name, for determinism).
const TEMPLATES: usize = 48;
/// Thumbnail side: 224 / 14.
const THUMB: usize = 16;

/// A 16x16 colour thumbnail of an image preprocessed to [3, 224, 224] in
/// 0..1, centred and scaled to unit length: what the emoji model computes
/// in its graph (AveragePool 14, then the same centring and scaling).
fn thumbnail(x: &[f32]) -> Vec<f32> {
    let s = 224;
    let mut t = vec![0f32; 3 * THUMB * THUMB];
    for c in 0..3 {
        for by in 0..THUMB {
            for bx in 0..THUMB {
                let mut sum = 0.0;
                for y in 0..14 {
                    for x0 in 0..14 {
                        sum += x[c * s * s + (by * 14 + y) * s + bx * 14 + x0];
                    }
                }
                t[c * THUMB * THUMB + by * THUMB + bx] = sum / 196.0;
            }
        }
    }
    let mean = t.iter().sum::<f32>() / t.len() as f32;
    t.iter_mut().for_each(|v| *v -= mean);
    let norm = t.iter().map(|v| v * v).sum::<f32>().sqrt() + 1e-6;
    t.iter_mut().for_each(|v| *v /= norm);
    t
}

/// The emoji-annotation model: input `image` [N, 3, 224, 224] in 0..1,
/// output `response` [N, 6, 1, 1], one channel per emoji concept.
pub fn emoji_model(items: &[crate::vision::data::Item]) -> Result<ModelProto, String> {
    let data = crate::vision::data::Dataset {
        name: "openmoji".into(),
        items: std::sync::Arc::new(items.to_vec()),
        sandbox: None,
    };
    let mut b = GraphBuilder::default();
    let d = 3 * THUMB * THUMB;
    let pooled = b.node(
        "AveragePool",
        "/emoji/AveragePool",
        &["image"],
        vec![crate::models::build::ints("kernel_shape", &[14, 14]), crate::models::build::ints("strides", &[14, 14])],
    );
    b.i64("emoji.flat", &[2], &[0, d as i64]);
    let flat = b.node("Reshape", "/emoji/Reshape", &[&pooled, "emoji.flat"], vec![]);
    // Opset 13: ReduceMean, ReduceL2 and ReduceMax take their axes as an attribute.
    let axis1 = || crate::models::build::ints("axes", &[1]);
    let mean = b.node("ReduceMean", "/emoji/ReduceMean", &[&flat], vec![axis1(), int("keepdims", 1)]);
    let centred = b.node("Sub", "/emoji/Sub", &[&flat, &mean], vec![]);
    let norm = b.node("ReduceL2", "/emoji/ReduceL2", &[&centred], vec![axis1(), int("keepdims", 1)]);
    b.f32("emoji.eps", &[], &[1e-6]);
    let norm = b.node("Add", "/emoji/eps", &[&norm, "emoji.eps"], vec![]);
    let unit = b.node("Div", "/emoji/Div", &[&centred, &norm], vec![]);
    let mut outs = Vec::new();
    for (name, word, _) in EMOJI_CONCEPTS {
        let mut bank: Vec<f32> = Vec::new();
        let mut k = 0;
        for (i, it) in items.iter().enumerate() {
            if k == TEMPLATES {
                break;
            }
            if !it
                .label
                .as_deref()
                .is_some_and(|l| l.to_lowercase().split(|c: char| !c.is_alphanumeric()).any(|w| w == *word))
            {
                continue;
            }
            let (img, _, _) = data.read(i)?;
            let x = crate::pixels::preprocess(&img, 224, 224, [0.0; 3], [255.0; 3])?;
            bank.extend(thumbnail(&x));
            k += 1;
        }
        if k == 0 {
            return Err(format!("no emoji is annotated with \"{word}\""));
        }
        // [d, k]: templates as columns.
        let cols = crate::models::build::transpose(&bank, k, d);
        b.f32(&format!("emoji.{name}.templates"), &[d, k], &cols);
        let sims =
            b.node("MatMul", &format!("/emoji/{name}/MatMul"), &[&unit, &format!("emoji.{name}.templates")], vec![]);
        outs.push(b.node(
            "ReduceMax",
            &format!("/emoji/{name}/ReduceMax"),
            &[&sims],
            vec![axis1(), int("keepdims", 1)],
        ));
    }
    let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    let all = b.node("Concat", "/emoji/Concat", &refs, vec![int("axis", 1)]);
    b.i64("emoji.spatial", &[2], &[2, 3]);
    b.node_to("Unsqueeze", "/response", &[&all, "emoji.spatial"], vec![], "response");
    let graph = crate::onnx::proto::GraphProto {
        node: b.nodes,
        name: Some("synthetic_emoji".into()),
        initializer: b.inits,
        input: vec![batched("image", DataType::Float, &[3, 224, 224])],
        output: vec![batched("response", DataType::Float, &[EMOJI_CONCEPTS.len() as i64, 1, 1])],
        ..Default::default()
    };
    Ok(crate::models::build::model(graph, "Assay's benchmark synthetic neurons: emoji-annotation concepts".into()))
}

/// Changes whenever the emoji model's definition does (its cache key).
const EMOJI_MODEL_VERSION: u32 = 2;

/// The emoji-annotation model in the cache, built on first use (rendering
/// its templates takes a while, so it is cached under a key of its
/// definition rather than rebuilt to find its digest). Returns the path,
/// the bytes and their sha256.
pub fn emoji_model_cached() -> Result<(std::path::PathBuf, Vec<u8>, String), String> {
    use sha2::Digest;
    let key = hex::encode(sha2::Sha256::digest(
        format!("{EMOJI_MODEL_VERSION}|{TEMPLATES}|{THUMB}|{EMOJI_CONCEPTS:?}|openmoji-17.0.0").as_bytes(),
    ));
    let path = crate::fetch::cache_dir().join("models").join("synthetic").join(format!("emoji-{}.onnx", &key[..12]));
    if !path.is_file() {
        let items = crate::vision::data::emoji_items()?;
        let bytes = crate::onnx::graph::encode(&emoji_model(&items)?);
        crate::fetch::write_atomic(&path, &bytes)?;
    }
    let bytes = crate::fetch::read_cached(&path)?;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    Ok((path, bytes, sha))
}

/// One of the concept neurons (group, OR or AND): its channel in the
/// concept model, name, kind and written ground truth.
pub struct Concept {
    pub name: String,
    pub kind: &'static str,
    pub description: String,
}

fn group(name: &str) -> &'static Group {
    GROUPS.iter().find(|g| g.name == name).unwrap_or(&GROUPS[0])
}

/// Every concept neuron, in channel order: groups, then ORs, then ANDs.
pub fn concepts() -> Vec<Concept> {
    let mut out: Vec<Concept> = GROUPS
        .iter()
        .map(|g| Concept { name: g.name.to_string(), kind: "single", description: g.description.to_string() })
        .collect();
    for (a, b) in ORS {
        out.push(Concept {
            name: format!("{a}_or_{b}"),
            kind: "or",
            description: format!("{} OR {}", group(a).description, group(b).description),
        });
    }
    for (a, b) in ANDS {
        out.push(Concept {
            name: format!("{a}_and_{b}"),
            kind: "and",
            description: format!("{} AND {} together in one picture", group(a).description, group(b).description),
        });
    }
    out
}

/// EfficientNet-Lite0 with its class probabilities grouped and combined;
/// output `response` [N, C, 1, 1], one channel per concept neuron.
pub fn concept_model(efficientnet: &ModelProto) -> Result<ModelProto, String> {
    let groups: Vec<(&str, Vec<i64>)> =
        GROUPS.iter().map(|g| (g.name, g.classes.iter().map(|c| *c as i64).collect())).collect();
    crate::models::efficientnet::concepts_over_efficientnet(
        efficientnet,
        "concepts85",
        &groups,
        |b, sums| {
            let mut order: Vec<String> = GROUPS.iter().map(|g| sums[g.name].clone()).collect();
            for (a, c) in ORS {
                order.push(b.node("Max", &format!("/concepts85/{a}_or_{c}"), &[&sums[*a], &sums[*c]], vec![]));
            }
            // MAIA's AND: the first concept's value when both are present,
            // else small noise in [0, 0.1): here the fractional part of
            // 10,000 times the two probabilities' sum, so the same image
            // always gives the same value (runs replay byte for byte).
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
            order
        },
        (
            "synthetic_concepts85",
            "Assay's benchmark synthetic neurons: 77 concepts over EfficientNet-Lite0's class probabilities",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_has_maias_mix_and_every_pair_names_known_groups() {
        let c = concepts();
        let singles = c.iter().filter(|x| x.kind == "single").count();
        assert_eq!(
            singles + 8 + EMOJI_CONCEPTS.len(),
            53,
            "53 single-concept neurons with the low-level and emoji ones"
        );
        assert_eq!(ORS.len(), 18);
        assert_eq!(ANDS.len(), 20);
        for (a, b) in ORS.iter().chain(ANDS.iter()) {
            assert!(GROUPS.iter().any(|g| g.name == *a) && GROUPS.iter().any(|g| g.name == *b), "{a} {b}");
        }
        let mut names: Vec<&str> = c.iter().map(|x| x.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), c.len(), "names are unique");
        for g in GROUPS {
            assert!(g.classes.iter().all(|i| *i < 1000) && !g.classes.is_empty(), "{}", g.name);
        }
    }

    /// The concept model over a stand-in classifier whose logits are its
    /// input, run on logits made to give chosen group probabilities.
    fn responses(probs: &[(&str, f32)]) -> Vec<f32> {
        use crate::models::build::{batched, model};
        use crate::onnx::proto::{GraphProto, NodeProto};
        let stub = model(
            GraphProto {
                name: Some("stub".into()),
                node: vec![NodeProto {
                    op_type: Some("Identity".into()),
                    input: vec!["x".into()],
                    output: vec!["logits".into()],
                    ..Default::default()
                }],
                input: vec![batched("x", DataType::Float, &[1000])],
                output: vec![batched("logits", DataType::Float, &[1000])],
                ..Default::default()
            },
            "a classifier whose logits are its input".into(),
        );
        let m = crate::onnx::model::Model::load_bytes(
            "concepts",
            &crate::onnx::graph::encode(&concept_model(&stub).unwrap()),
            crate::onnx::model::Provider::Cpu,
        )
        .unwrap();
        // One class of each named group gets its probability; the rest is
        // spread evenly over the other classes.
        let mut p = vec![0.0f32; 1000];
        for (name, q) in probs {
            p[group(name).classes[0]] = *q;
        }
        let given: Vec<usize> = probs.iter().map(|(n, _)| group(n).classes[0]).collect();
        let rest = (1.0 - probs.iter().map(|(_, q)| q).sum::<f32>()) / (1000 - given.len()) as f32;
        let logits: Vec<f32> = (0..1000).map(|i| if given.contains(&i) { p[i] } else { rest }.ln()).collect();
        let feed = ndarray::ArrayD::from_shape_vec(vec![1, 1000], logits).unwrap();
        let out = m
            .run(
                &crate::onnx::model::HookSet::Plain,
                || Err(crate::onnx::error::ModelError::Graph("run as it is".into())),
                vec![("x".into(), feed)],
                &["response".to_string()],
            )
            .unwrap();
        out["response"].iter().copied().collect()
    }

    #[test]
    fn an_and_neuron_is_its_first_concept_when_both_are_present_else_small_noise() {
        let names: Vec<String> = concepts().into_iter().map(|c| c.name).collect();
        let at = |n: &str| names.iter().position(|x| x == n).unwrap();
        let (and, dog) = (at("dog_and_ball"), at("dog"));
        // Both present: the first concept's probability, not the smaller.
        let r = responses(&[("dog", 0.3), ("ball", 0.6)]);
        assert!((r[and] - r[dog]).abs() < 1e-6 && (r[dog] - 0.3).abs() < 0.05, "{} {}", r[and], r[dog]);
        // One absent: noise in [0, 0.1), the same for the same image.
        for probs in [[("dog", 0.8), ("ball", 0.05)], [("dog", 0.02), ("ball", 0.9)], [("dog", 0.0), ("ball", 0.0)]] {
            let r = responses(&probs);
            assert!((0.0..0.1).contains(&r[and]), "{probs:?}: {}", r[and]);
            assert_eq!(r[and].to_bits(), responses(&probs)[and].to_bits(), "{probs:?}");
        }
        // The noise varies from image to image.
        let noise: Vec<f32> = (1..6).map(|k| responses(&[("dog", 0.01 * k as f32), ("ball", 0.5)])[and]).collect();
        assert!(noise.windows(2).any(|w| w[0] != w[1]), "{noise:?}");
    }
}
