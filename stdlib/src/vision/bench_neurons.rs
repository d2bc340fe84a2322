//! The benchmark's synthetic neurons at MAIA's scale: 91 with MAIA's mix
//! (53 single-concept, 18 OR, 20 AND), from three kinds of detector Assay
//! runs in ONNX Runtime:
//! - the 8 low-level filter neurons of `synthetic.rs`;
//! - 39 concepts (cats, dogs, balls, cars, fruit, ...), each a read-out of
//!   EfficientNet-Lite0's pooled features trained on the openmoji drawings
//!   that show it (`bench_concepts`): the probability that the picture
//!   shows the concept; OR is the larger of two, AND MAIA's: the first
//!   concept's probability when both are present (above [`AND_PRESENT`]),
//!   else small noise in [0, 0.1) that depends only on the image;
//! - 6 emoji-annotation concepts: the largest cosine similarity between a
//!   16x16 colour thumbnail of the image and those of the openmoji drawings
//!   whose annotation names the concept (hearts, flags, ...).
//!
//! Each has its written ground truth.

use crate::models::build::{batched, int, GraphBuilder};
use crate::onnx::proto::{tensor_proto::DataType, ModelProto};

/// A concept: its name, its ground truth in words, and the openmoji
/// drawings that show it (by annotation), on which its detector is trained.
pub struct Group {
    pub name: &'static str,
    pub description: &'static str,
    pub emoji: &'static [&'static str],
}

pub const GROUPS: &[Group] = &[
    Group {
        name: "cats",
        description: "cats and cat faces",
        emoji: &[
            "grinning cat",
            "grinning cat with smiling eyes",
            "cat with tears of joy",
            "smiling cat with heart-eyes",
            "cat with wry smile",
            "kissing cat",
            "weary cat",
            "crying cat",
            "pouting cat",
            "cat face",
            "cat",
            "black cat",
        ],
    },
    Group {
        name: "balls",
        description: "balls used in sports (soccer, baseball, basketball, volleyball, tennis, pool, bowling, ...)",
        emoji: &[
            "soccer ball",
            "baseball",
            "softball",
            "basketball",
            "volleyball",
            "american football",
            "rugby football",
            "tennis",
            "pool 8 ball",
            "bowling",
        ],
    },
    Group {
        name: "cups",
        description: "cups and hot drinks (a steaming cup, a teacup, a cup with a straw)",
        emoji: &["hot beverage", "teacup without handle", "mate", "cup with straw"],
    },
    Group {
        name: "dogs",
        description: "dogs of any breed",
        emoji: &["dog face", "dog", "guide dog", "service dog", "poodle"],
    },
    Group { name: "wild_canines", description: "wolves and foxes", emoji: &["wolf", "fox"] },
    Group {
        name: "big_cats",
        description: "big cats (tigers, leopards, lions)",
        emoji: &["tiger face", "tiger", "leopard", "lion"],
    },
    Group { name: "bears", description: "bears (brown and polar)", emoji: &["bear", "polar bear"] },
    Group {
        name: "primates",
        description: "apes and monkeys",
        emoji: &["monkey face", "monkey", "gorilla", "orangutan"],
    },
    Group { name: "elephants", description: "elephants and mammoths", emoji: &["elephant", "mammoth"] },
    Group {
        name: "hoofed_animals",
        description: "hoofed animals (horses, cattle, pigs, sheep, goats, camels, llamas, zebras, deer, ...)",
        emoji: &[
            "horse face",
            "horse",
            "cow face",
            "cow",
            "ox",
            "water buffalo",
            "pig face",
            "pig",
            "boar",
            "ram",
            "ewe",
            "goat",
            "camel",
            "two-hump camel",
            "llama",
            "zebra",
            "deer",
            "moose",
            "donkey",
            "bison",
        ],
    },
    Group {
        name: "small_mammals",
        description: "rabbits, hamsters, chipmunks, beavers, mice, rats and hedgehogs",
        emoji: &["rabbit face", "rabbit", "hamster", "chipmunk", "beaver", "mouse face", "mouse", "rat", "hedgehog"],
    },
    Group {
        name: "birds",
        description: "birds of any kind",
        emoji: &[
            "bird",
            "black bird",
            "eagle",
            "duck",
            "swan",
            "owl",
            "dodo",
            "flamingo",
            "peacock",
            "parrot",
            "rooster",
            "chicken",
            "penguin",
            "dove",
            "turkey",
            "goose",
        ],
    },
    Group {
        name: "fish",
        description: "fish (including sharks and pufferfish)",
        emoji: &["fish", "tropical fish", "blowfish", "shark"],
    },
    Group {
        name: "sea_mammals",
        description: "whales, dolphins and seals",
        emoji: &["spouting whale", "whale", "seal", "dolphin"],
    },
    Group { name: "frogs", description: "frogs", emoji: &["frog"] },
    Group { name: "turtles", description: "turtles", emoji: &["turtle"] },
    Group { name: "lizards", description: "lizards", emoji: &["lizard"] },
    Group { name: "crocodiles", description: "crocodiles", emoji: &["crocodile"] },
    Group { name: "snakes", description: "snakes", emoji: &["snake"] },
    Group { name: "spiders", description: "spiders and scorpions", emoji: &["spider", "scorpion"] },
    Group {
        name: "insects",
        description: "insects (ants, bees, beetles, crickets, cockroaches, flies, mosquitoes), not butterflies",
        emoji: &["ant", "honeybee", "beetle", "lady beetle", "cricket", "cockroach", "fly", "mosquito"],
    },
    Group { name: "butterflies", description: "butterflies", emoji: &["butterfly"] },
    Group { name: "crustaceans", description: "crabs, lobsters and shrimps", emoji: &["crab", "lobster", "shrimp"] },
    Group {
        name: "sea_creatures",
        description: "jellyfish, snails, corals and shells",
        emoji: &["jellyfish", "snail", "coral", "spiral shell"],
    },
    Group {
        name: "cars",
        description: "cars (taxis, police cars, racing cars, SUVs, ...)",
        emoji: &[
            "automobile",
            "taxi",
            "police car",
            "racing car",
            "sport utility vehicle",
            "oncoming automobile",
            "oncoming taxi",
        ],
    },
    Group {
        name: "trucks",
        description: "trucks (delivery trucks, lorries, pickups, fire engines, ambulances)",
        emoji: &["delivery truck", "articulated lorry", "pickup truck", "fire engine", "ambulance"],
    },
    Group {
        name: "boats",
        description: "boats and ships",
        emoji: &["sailboat", "canoe", "speedboat", "passenger ship", "ferry", "motor boat", "ship"],
    },
    Group {
        name: "aircraft",
        description: "aircraft (airplanes, the space shuttle)",
        emoji: &["airplane", "small airplane", "airplane departure", "airplane arrival", "space shuttle"],
    },
    Group {
        name: "trains",
        description: "trains, locomotives, trams and railway cars",
        emoji: &[
            "locomotive",
            "railway car",
            "high-speed train",
            "bullet train",
            "train",
            "tram",
            "tram car",
            "light rail",
            "metro",
            "monorail",
        ],
    },
    Group {
        name: "cycles",
        description: "bicycles, scooters, motorcycles and rickshaws",
        emoji: &["bicycle", "motor scooter", "kick scooter", "auto rickshaw", "motorcycle"],
    },
    Group {
        name: "instruments",
        description: "musical instruments",
        emoji: &[
            "violin",
            "guitar",
            "trumpet",
            "saxophone",
            "accordion",
            "banjo",
            "drum",
            "long drum",
            "maracas",
            "musical keyboard",
            "flute",
        ],
    },
    Group {
        name: "fruit",
        description: "fruit (apples, pears, citrus, bananas, pineapples, berries, grapes, melons, ...)",
        emoji: &[
            "red apple",
            "green apple",
            "pear",
            "tangerine",
            "lemon",
            "banana",
            "pineapple",
            "strawberry",
            "grapes",
            "melon",
            "watermelon",
            "cherries",
            "peach",
            "mango",
            "kiwi fruit",
            "blueberries",
        ],
    },
    Group {
        name: "vegetables",
        description: "vegetables (broccoli, cucumbers, peppers, corn, aubergines, greens, potatoes, carrots)",
        emoji: &[
            "broccoli",
            "cucumber",
            "hot pepper",
            "bell pepper",
            "ear of corn",
            "eggplant",
            "leafy green",
            "potato",
            "carrot",
        ],
    },
    Group {
        name: "dishes",
        description: "prepared food (pizza, burgers, hot dogs, burritos, tacos, bread, bagels, ice cream, salad, ...)",
        emoji: &[
            "pizza",
            "hamburger",
            "hot dog",
            "burrito",
            "taco",
            "bagel",
            "bread",
            "baguette bread",
            "soft ice cream",
            "ice cream",
            "shaved ice",
            "pot of food",
            "bowl with spoon",
            "green salad",
            "pretzel",
        ],
    },
    Group { name: "mushrooms", description: "mushrooms", emoji: &["mushroom", "brown mushroom"] },
    Group {
        name: "buildings",
        description: "buildings (castles, churches, mosques, temples, houses, stadiums, huts, ...)",
        emoji: &[
            "castle",
            "Japanese castle",
            "church",
            "mosque",
            "hindu temple",
            "synagogue",
            "house",
            "classical building",
            "stadium",
            "hut",
        ],
    },
    Group {
        name: "clocks",
        description: "clocks, watches and hourglasses",
        emoji: &[
            "alarm clock",
            "timer clock",
            "mantelpiece clock",
            "watch",
            "stopwatch",
            "hourglass done",
            "hourglass not done",
        ],
    },
    Group {
        name: "computers",
        description: "computers, phones and screens (desktops, laptops, keyboards, mice, televisions, printers)",
        emoji: &[
            "desktop computer",
            "laptop",
            "computer mouse",
            "keyboard",
            "mobile phone",
            "television",
            "printer",
            "trackball",
        ],
    },
    Group {
        name: "landscapes",
        description: "natural landscapes (mountains, volcanoes, beaches, islands, deserts, parks)",
        emoji: &[
            "snow-capped mountain",
            "mountain",
            "volcano",
            "beach with umbrella",
            "desert island",
            "national park",
            "desert",
            "sunrise over mountains",
        ],
    },
];

/// OR neurons: either group.
pub const ORS: &[(&str, &str)] = &[
    ("dogs", "cats"),
    ("cars", "boats"),
    ("fruit", "vegetables"),
    ("birds", "aircraft"),
    ("fish", "boats"),
    ("snakes", "lizards"),
    ("clocks", "computers"),
    ("bears", "dogs"),
    ("instruments", "computers"),
    ("trains", "trucks"),
    ("butterflies", "birds"),
    ("mushrooms", "dishes"),
    ("buildings", "landscapes"),
    ("spiders", "insects"),
    ("primates", "bears"),
    ("balls", "dogs"),
    ("cups", "fruit"),
    ("turtles", "crocodiles"),
];

/// A concept is present in a picture, for an AND neuron, when its
/// detector's probability is above this (its decision threshold).
pub const AND_PRESENT: f32 = 0.5;

/// AND neurons: both groups in one picture.
pub const ANDS: &[(&str, &str)] = &[
    ("dogs", "balls"),
    ("cats", "dogs"),
    ("dogs", "cars"),
    ("fruit", "cups"),
    ("dishes", "cups"),
    ("cars", "buildings"),
    ("boats", "landscapes"),
    ("computers", "cups"),
    ("clocks", "buildings"),
    ("cycles", "dogs"),
    ("trains", "buildings"),
    ("bears", "fish"),
    ("insects", "fruit"),
    ("butterflies", "mushrooms"),
    ("fruit", "vegetables"),
    ("trucks", "cars"),
    ("birds", "fish"),
    ("instruments", "cats"),
    ("primates", "fruit"),
    ("elephants", "landscapes"),
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
        // Each drawing shows at most one group.
        let mut drawings: Vec<&str> = GROUPS.iter().flat_map(|g| g.emoji.iter().copied()).collect();
        let n = drawings.len();
        drawings.sort();
        drawings.dedup();
        assert_eq!(drawings.len(), n, "a drawing is listed under two groups");
        assert!(GROUPS.iter().all(|g| !g.emoji.is_empty()));
        // `synthetic(name)` finds every benchmark neuron, not a tool's own
        // concept neuron of the same name.
        for x in &c {
            assert!(crate::vision::synthetic::CONCEPTS.iter().all(|n| n.name != x.name), "{} is taken", x.name);
        }
    }
}
