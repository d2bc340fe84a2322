//! Synthetic neurons with ground truth, in the spirit of MAIA's: units whose
//! true selectivity is known because it was written down and built, so that
//! a description found by a person or an agent can be checked.
//!
//! They are ONNX graphs run through the same runtime as any model:
//! - low-level neurons are fixed filters over the image (a colour, an
//!   orientation, a location, a texture frequency), one channel each of a
//!   [N, 8, 224, 224] response map, read as its spatial max (colour,
//!   location) or mean (orientation, texture: how much of the image);
//! - concept neurons sit on EfficientNet-Lite0's class probabilities: a
//!   class group's summed probability, and groups combined with OR (max),
//!   AND (min) and AND-NOT (min(a, 1 - b)), one channel each of [N, 6, 1, 1].
//!
//! `score(unit, positives, negatives)` checks a description: the probability
//! that the unit responds more to a positive stimulus than to a negative one
//! (the area under the ROC curve; 0.5 is chance).

use std::sync::Arc;

use assay_interpreter::{Arg, Args, Bound, HandleKind, Image, Name, ToolCtx, ToolError, Type, Value};

use crate::core::declare::{bound_by_name, tool, Param, ToolResult};
use crate::core::kinds::each;
use crate::methods::units::{Reduce, Select, Unit};
use crate::models::build::{batched, int, ints, string, GraphBuilder};
use crate::onnx::handle::ModelHandle;
use crate::onnx::model::{Card, Model, Preprocess, Provider};
use crate::onnx::proto::{tensor_proto::DataType, GraphProto, ModelProto};

/// One synthetic neuron: its name, how it was built, and the truth.
pub struct Neuron {
    pub name: &'static str,
    pub family: &'static str,
    pub kind: &'static str,
    pub description: &'static str,
    /// Read as the spatial mean of its map (how much of the image has the
    /// property) rather than the max (whether any part has it).
    pub mean: bool,
}

/// Low-level neurons, in channel order of the filter model's response.
pub const LOW_LEVEL: &[Neuron] = &[
    Neuron {
        name: "red",
        family: "low-level",
        kind: "colour",
        description: "saturated red regions (not orange, pink, white or other colours), anywhere, any shape",
        mean: false,
    },
    Neuron {
        name: "green",
        family: "low-level",
        kind: "colour",
        description: "saturated green regions, anywhere, any shape",
        mean: false,
    },
    Neuron {
        name: "blue",
        family: "low-level",
        kind: "colour",
        description: "saturated blue regions, anywhere, any shape",
        mean: false,
    },
    Neuron {
        name: "vertical",
        family: "low-level",
        kind: "orientation",
        description: "vertical edges and stripes, of any colour; horizontal ones do not count",
        mean: true,
    },
    Neuron {
        name: "horizontal",
        family: "low-level",
        kind: "orientation",
        description: "horizontal edges and stripes, of any colour; vertical ones do not count",
        mean: true,
    },
    Neuron {
        name: "left",
        family: "low-level",
        kind: "location",
        description: "any object, edge or texture in the left half of the image; the right half is ignored",
        mean: false,
    },
    Neuron {
        name: "top",
        family: "low-level",
        kind: "location",
        description: "any object, edge or texture in the top half of the image; the bottom half is ignored",
        mean: false,
    },
    Neuron {
        name: "fine_texture",
        family: "low-level",
        kind: "texture",
        description:
            "fine, high-frequency texture: stripes, checks or dots a few pixels apart, more than coarse patterns",
        mean: true,
    },
];

/// Concept neurons, in channel order of the concept model's response.
pub const CONCEPTS: &[Neuron] = &[
    Neuron {
        name: "cat",
        family: "concept",
        kind: "single",
        description: "cats (tabby, tiger cat, Persian, Siamese, Egyptian cat)",
        mean: false,
    },
    Neuron {
        name: "ball",
        family: "concept",
        kind: "single",
        description:
            "balls used in sports (soccer ball, basketball, baseball, tennis ball, volleyball, golf ball, ...)",
        mean: false,
    },
    Neuron {
        name: "cup",
        family: "concept",
        kind: "single",
        description: "cups of coffee (espresso, cup, coffee mug)",
        mean: false,
    },
    Neuron { name: "cat_or_cup", family: "concept", kind: "or", description: "cats OR cups of coffee", mean: false },
    Neuron {
        name: "cat_and_ball",
        family: "concept",
        kind: "and",
        description: "a cat AND a ball together in one picture",
        mean: false,
    },
    Neuron {
        name: "cat_not_ball",
        family: "concept",
        kind: "and-not",
        description: "cats, but NOT when a ball is present",
        mean: false,
    },
];

/// The class groups concept neurons are built from (first names of ImageNet classes).
const GROUPS: &[(&str, &[&str])] = &[
    ("cat", &["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]),
    (
        "ball",
        &[
            "soccer ball",
            "basketball",
            "baseball",
            "tennis ball",
            "volleyball",
            "golf ball",
            "ping-pong ball",
            "rugby ball",
            "croquet ball",
        ],
    ),
    ("cup", &["espresso", "cup", "coffee mug"]),
];

fn all() -> impl Iterator<Item = &'static Neuron> {
    LOW_LEVEL.iter().chain(CONCEPTS.iter())
}

const SIZE: i64 = 224;

/// The fixed-filter model: input `image` [N, 3, 224, 224] in 0..1, output
/// `response` [N, 8, 224, 224], one channel per low-level neuron.
pub fn low_level_model() -> ModelProto {
    let mut b = GraphBuilder::default();
    let pool = |b: &mut GraphBuilder, name: &str, x: &str, k: i64| {
        let p = k / 2;
        b.node("AveragePool", name, &[x], vec![ints("kernel_shape", &[k, k]), ints("pads", &[p, p, p, p])])
    };
    // Colours: a 1x1 convolution, then ReLU.
    let w: Vec<f32> = vec![1.0, -0.75, -0.75, -0.75, 1.0, -0.75, -0.75, -0.75, 1.0];
    b.f32("colour.weight", &[3, 3, 1, 1], &w);
    b.f32("colour.bias", &[3], &[-0.1; 3]);
    let c = b.node("Conv", "/colour/Conv", &["image", "colour.weight", "colour.bias"], vec![]);
    let colour = b.node("Relu", "/colour/Relu", &[&c], vec![]);
    // Orientation: Sobel gradients of the grey image; vertical edges have a
    // horizontal gradient. Averaged over 9x9 so that stripes beat one line.
    b.f32("grey.weight", &[1, 3, 1, 1], &[1.0 / 3.0; 3]);
    let grey = b.node("Conv", "/orientation/grey", &["image", "grey.weight"], vec![]);
    b.f32(
        "sobel.weight",
        &[2, 1, 3, 3],
        &[-1., 0., 1., -2., 0., 2., -1., 0., 1., -1., -2., -1., 0., 0., 0., 1., 2., 1.],
    );
    // Edge padding: a zero border would be the strongest edge of every image.
    b.i64("sobel.pads", &[8], &[0, 0, 1, 1, 0, 0, 1, 1]);
    let padded = b.node("Pad", "/orientation/Pad", &[&grey, "sobel.pads"], vec![string("mode", "edge")]);
    let g = b.node("Conv", "/orientation/sobel", &[&padded, "sobel.weight"], vec![]);
    let g = b.node("Abs", "/orientation/Abs", &[&g], vec![]);
    // [|gx|, |gy|] -> [|gx| - |gy|, |gy| - |gx|] by a fixed 1x1 convolution.
    b.f32("contrast.weight", &[2, 2, 1, 1], &[1.0, -1.0, -1.0, 1.0]);
    let d = b.node("Conv", "/orientation/difference", &[&g, "contrast.weight"], vec![]);
    let d = b.node("Relu", "/orientation/Relu", &[&d], vec![]);
    let orientation = pool(&mut b, "/orientation/AveragePool", &d, 9);
    // Location: local contrast (distance from the 15x15 mean, summed over
    // colours), kept only in one half of the image.
    let mean = pool(&mut b, "/location/AveragePool", "image", 15);
    let diff = b.node("Sub", "/location/Sub", &["image", &mean], vec![]);
    let diff = b.node("Abs", "/location/Abs", &[&diff], vec![]);
    b.i64("channel_axis", &[1], &[1]);
    let contrast = b.node("ReduceSum", "/location/ReduceSum", &[&diff, "channel_axis"], vec![int("keepdims", 1)]);
    let s = SIZE as usize;
    let mut masks = vec![0f32; 2 * s * s];
    for y in 0..s {
        for x in 0..s {
            masks[y * s + x] = if x < s / 2 { 1.0 } else { 0.0 };
            masks[s * s + y * s + x] = if y < s / 2 { 1.0 } else { 0.0 };
        }
    }
    b.f32("location.mask", &[1, 2, s, s], &masks);
    let location = b.node("Mul", "/location/Mul", &[&contrast, "location.mask"], vec![]);
    // Texture frequency: high-pass energy (distance from the 3x3 mean),
    // averaged over 31x31: dense for fine patterns, sparse for coarse ones.
    let local = pool(&mut b, "/texture/AveragePool", "image", 3);
    let hp = b.node("Sub", "/texture/Sub", &["image", &local], vec![]);
    let hp = b.node("Abs", "/texture/Abs", &[&hp], vec![]);
    let hp = b.node("ReduceSum", "/texture/ReduceSum", &[&hp, "channel_axis"], vec![int("keepdims", 1)]);
    let texture = pool(&mut b, "/texture/density", &hp, 31);
    b.node_to("Concat", "/response", &[&colour, &orientation, &location, &texture], vec![int("axis", 1)], "response");
    let graph = GraphProto {
        node: b.nodes,
        name: Some("synthetic_low_level".into()),
        initializer: b.inits,
        input: vec![batched("image", DataType::Float, &[3, SIZE, SIZE])],
        output: vec![batched("response", DataType::Float, &[LOW_LEVEL.len() as i64, SIZE, SIZE])],
        ..Default::default()
    };
    crate::models::build::model(
        graph,
        "Assay synthetic neurons: low-level filters (red, green, blue, vertical, horizontal, left, top, fine_texture)"
            .into(),
    )
}

/// The concept model: EfficientNet-Lite0 with its class probabilities
/// grouped and combined; output `response` [N, 6, 1, 1].
pub fn concept_model(efficientnet: &ModelProto, labels: &[String]) -> Result<ModelProto, String> {
    let mut groups = Vec::new();
    for (name, classes) in GROUPS {
        let mut idx = Vec::new();
        for c in *classes {
            let i = labels
                .iter()
                .position(|l| l.split(',').next().map(str::trim) == Some(*c))
                .ok_or_else(|| format!("ImageNet has no class `{c}`"))?;
            idx.push(i as i64);
        }
        groups.push((*name, idx));
    }
    crate::models::efficientnet::concepts_over_efficientnet(
        efficientnet,
        "concept",
        &groups,
        |b, group| {
            b.f32("concept.one", &[], &[1.0]);
            let not_ball = b.node("Sub", "/concept/not_ball", &["concept.one", &group["ball"]], vec![]);
            let or = b.node("Max", "/concept/cat_or_cup", &[&group["cat"], &group["cup"]], vec![]);
            let and = b.node("Min", "/concept/cat_and_ball", &[&group["cat"], &group["ball"]], vec![]);
            let and_not = b.node("Min", "/concept/cat_not_ball", &[&group["cat"], &not_ball], vec![]);
            vec![group["cat"].clone(), group["ball"].clone(), group["cup"].clone(), or, and, and_not]
        },
        ("synthetic_concepts", "Assay synthetic neurons: concepts over EfficientNet-Lite0's class probabilities"),
    )
}

/// Builds the synthetic-neuron models into the cache (for a sandboxed run,
/// which may read the cache but not write it); the benchmark's concept
/// model, which is trained, only with `bench`.
pub fn provision(bench: bool) -> Result<(), String> {
    crate::models::build::cache_built("synthetic", "low-level", &low_level_model())?;
    let (path, labels) = crate::models::efficientnet::provision()?;
    let bytes = crate::fetch::read_cached(&path)?;
    let base = crate::onnx::graph::decode(&bytes).map_err(|e| e.to_string())?;
    crate::models::build::cache_built("synthetic", "concepts", &concept_model(&base, &labels)?)?;
    if bench {
        crate::vision::bench_concepts::concept_model_cached()?;
    }
    crate::vision::bench_neurons::emoji_model_cached()?;
    Ok(())
}

/// Writes a built model into the cache under a name derived from its bytes
/// (so a changed definition never meets a stale file) and loads it.
/// Caches a built model and loads it, recording it as a run input.
fn load_built(proto: &ModelProto, stem: &str, ctx: &mut dyn ToolCtx) -> Result<Model, String> {
    let (path, bytes, sha) = crate::models::build::cache_built("synthetic", stem, proto)?;
    ctx.note_input(&path, &sha);
    Model::load_deferred(&path, &format!("synthetic {stem}"), &bytes, sha, Provider::Cpu).map_err(|e| e.to_string())
}

/// Images as 0..1 pixels at 224x224, as the low-level filters and the
/// emoji neurons take them.
const PIXELS_0_1: Preprocess = Preprocess { resize: 224, size: 224, mean: [0.0; 3], std: [255.0; 3] };

/// A built model shared by every neuron over it in this process (built and
/// loaded once; its sessions serve all of them), recorded as an input of
/// each call. `make` builds and configures it the first time.
fn shared_built(
    stem: &'static str,
    ctx: &mut dyn ToolCtx,
    make: impl FnOnce(&mut dyn ToolCtx) -> Result<ModelHandle, String>,
) -> Result<ModelHandle, String> {
    static BUILT: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<&'static str, ModelHandle>>> =
        std::sync::OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let known = built.lock().map_err(|_| "a previous build failed midway")?.get(stem).cloned();
    if let Some(m) = known {
        ctx.note_input(&m.path, &m.sha256);
        return Ok(m);
    }
    let m = make(ctx)?;
    built.lock().map_err(|_| "a previous build failed midway")?.insert(stem, m.clone());
    Ok(m)
}

tool! {
    /// A synthetic neuron with known ground truth, as a channel unit that takes images like any other:
    /// low-level ones built from fixed filters ("red", "green", "blue", "vertical", "horizontal",
    /// "left", "top", "fine_texture") and concept ones over EfficientNet-Lite0's class probabilities
    /// ("cat", "ball", "cup", "cat_or_cup", "cat_and_ball", "cat_not_ball"). `synthetic_neurons()`
    /// lists them with their written ground truth; `score()` checks a description against one.
    ///
    /// ```assay
    /// let red = synthetic("red")
    /// let dot = c => svg("<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 10 10'><circle cx='5' cy='5' r='3' fill='{c}'/></svg>")
    /// assert red(dot("red")).activations[0] > red(dot("blue")).activations[0]
    /// ```
    synthetic in Vision -> Type::Handle(HandleKind::Unit);
    {
        /// the neuron's name
        name: String,
    }
    synthetic
}

fn synthetic(p: synthetic::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let name = p.name.as_str();
    let Some(n) = all().position(|n| n.name == name) else {
        // The benchmark's emoji-annotation neurons.
        if let Some(c) = crate::vision::bench_neurons::EMOJI_CONCEPTS.iter().position(|(n, _, _)| *n == name) {
            let (path, bytes, sha) = crate::vision::bench_neurons::emoji_model_cached().map_err(ToolError::new)?;
            ctx.note_input(&path, &sha);
            let m = Model::load_deferred(&path, "synthetic emoji", &bytes, sha, Provider::Cpu)
                .map_err(|e| ToolError::new(e.to_string()))?;
            let card = Card { preprocess: Some(PIXELS_0_1), ..Card::default() };
            return Ok(Value::Handle(Arc::new(Unit {
                model: ModelHandle::new(m, card),
                tensor: "response".into(),
                select: Select::Channel(Some(c), Reduce::Max),
            })));
        }
        // The benchmark's concept neurons (MAIA's scale).
        if let Some(c) = crate::vision::bench_neurons::concepts().iter().position(|c| c.name == name) {
            let m = shared_built("concepts85", ctx, |ctx| {
                let (path, bytes, sha) = crate::vision::bench_concepts::concept_model_cached()
                    .map_err(|e| format!("cannot build the benchmark's concept neurons: {e}"))?;
                ctx.note_input(&path, &sha);
                let m = Model::load_deferred(&path, "synthetic concepts85", &bytes, sha, Provider::Cpu)
                    .map_err(|e| e.to_string())?;
                Ok(ModelHandle::new(
                    m,
                    Card { preprocess: Some(crate::models::efficientnet::PREPROCESS), ..Card::default() },
                ))
            })
            .map_err(ToolError::new)?;
            return Ok(Value::Handle(Arc::new(Unit {
                model: m,
                tensor: "response".into(),
                select: Select::Channel(Some(c), Reduce::Max),
            })));
        }
        let names: Vec<&str> = all().map(|n| n.name).collect();
        let help = match assay_interpreter::closest(name, names.iter().copied()) {
            Some(c) => format!("did you mean \"{c}\"? synthetic_neurons() lists them all"),
            None => format!("known: {}", names.join(", ")),
        };
        return Err(p.name.error(format!("no synthetic neuron \"{name}\"")).help(help));
    };
    let reduce = if all().nth(n).is_some_and(|x| x.mean) { Reduce::Mean } else { Reduce::Max };
    let (model, channel) = if n < LOW_LEVEL.len() {
        let m = shared_built("low-level", ctx, |ctx| {
            let m = load_built(&low_level_model(), "low-level", ctx)?;
            Ok(ModelHandle::new(m, Card { preprocess: Some(PIXELS_0_1), ..Card::default() }))
        })
        .map_err(ToolError::new)?;
        (m, n)
    } else {
        let m = shared_built("concepts", ctx, |ctx| {
            let (path, labels) = crate::models::efficientnet::provision()
                .map_err(|e| format!("cannot prepare efficientnet-lite0: {e}"))?;
            let bytes = crate::fetch::read_cached(&path)?;
            let base = crate::onnx::graph::decode(&bytes).map_err(|e| e.to_string())?;
            let proto = concept_model(&base, &labels)?;
            let m = load_built(&proto, "concepts", ctx)?;
            let labels = CONCEPTS.iter().map(|c| c.name.to_string()).collect();
            Ok(ModelHandle::new(
                m,
                Card { labels, preprocess: Some(crate::models::efficientnet::PREPROCESS), ..Card::default() },
            ))
        })
        .map_err(ToolError::new)?;
        (m, n - LOW_LEVEL.len())
    };
    Ok(Value::Handle(Arc::new(Unit {
        model,
        tensor: "response".into(),
        select: Select::Channel(Some(channel), reduce),
    })))
}

tool! {
    /// Every synthetic neuron with its ground truth: a list of {name, family ("low-level" or
    /// "concept"), kind (colour, orientation, location, texture; single, or, and, and-not),
    /// description}. `set: "benchmark"` lists the 91 of the benchmark instead (MAIA's mix: 53
    /// single-concept, 18 OR, 20 AND, from the 8 low-level filters, 39 concepts detected in drawings
    /// (cats, dogs, balls, cars, ...) and 6 emoji-annotation concepts); `synthetic(name)` takes any of them.
    ///
    /// ```assay
    /// let ns = synthetic_neurons(set: "benchmark")
    /// assert len(ns) == 91 and len(filter(ns, n => n.kind == "and")) == 20
    /// ```
    ///
    /// ```assay
    /// let ns = synthetic_neurons()
    /// assert len(ns) == 14
    /// assert ns[0].name == "red" and ns[13].kind == "and-not"
    /// ```
    synthetic_neurons in Vision -> Type::list(Type::record());
    {
        /// "core" (the 14 named in `synthetic`) or "benchmark" (91)
        set: String = "core",
    }
    synthetic_neurons
}

fn synthetic_neurons(p: synthetic_neurons::Params, _: &mut dyn ToolCtx) -> ToolResult {
    match p.set.as_str() {
        "core" => {}
        "benchmark" => {
            return Ok(Value::list(
                benchmark_neurons()
                    .into_iter()
                    .map(|(name, family, kind, description)| {
                        Value::record([
                            ("name", Value::str(name)),
                            ("family", Value::str(family)),
                            ("kind", Value::str(kind)),
                            ("description", Value::str(description)),
                        ])
                    })
                    .collect(),
            ))
        }
        other => {
            return Err(p.set.error(format!("no set \"{other}\"")).help("the sets are \"core\" and \"benchmark\""))
        }
    }
    Ok(Value::list(
        all()
            .map(|n| {
                Value::record([
                    ("name", Value::str(n.name)),
                    ("family", Value::str(n.family)),
                    ("kind", Value::str(n.kind)),
                    ("description", Value::str(n.description)),
                ])
            })
            .collect(),
    ))
}
/// The benchmark's 85: the low-level filters and the concept neurons.
pub fn benchmark_neurons() -> Vec<(String, &'static str, &'static str, String)> {
    let mut out: Vec<(String, &'static str, &'static str, String)> =
        LOW_LEVEL.iter().map(|n| (n.name.to_string(), n.family, n.kind, n.description.to_string())).collect();
    out.extend(
        crate::vision::bench_neurons::concepts().into_iter().map(|c| (c.name, "concept", c.kind, c.description)),
    );
    out.extend(
        crate::vision::bench_neurons::EMOJI_CONCEPTS
            .iter()
            .map(|(n, _, d)| (n.to_string(), "emoji", "single", d.to_string())),
    );
    out
}

/// The probability that a random positive beats a random negative (ties
/// count half): the area under the ROC curve.
pub fn auc(pos: &[f64], neg: &[f64]) -> f64 {
    let mut wins = 0.0;
    for p in pos {
        for n in neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (pos.len() * neg.len()).max(1) as f64
}

/// What `score` shows a unit, as bound: images or texts (checked), or a
/// data set whose images the body loads.
pub(crate) enum Stimuli {
    Images(Vec<Arc<Image>>),
    Texts(Vec<String>),
    Data(Arg),
}

/// The most stimuli one side of `score` takes.
const MAX_STIMULI: usize = 2000;

impl Param for Stimuli {
    bound_by_name!();
    fn ty() -> Type {
        Type::OneOf(vec![Type::list(Type::Image), Type::list(Type::Str), Type::Handle(HandleKind::Dataset)])
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        let x = a.arg(name);
        if let Ok(d) = crate::vision::data::dataset_of(&x) {
            if d.items.is_empty() || d.items.len() > MAX_STIMULI {
                return Err(x
                    .error(format!("a data set of {} items; give 1 to {MAX_STIMULI}", d.items.len()))
                    .help("narrow it with filter(), take() or sample()"));
            }
            return Ok(Stimuli::Data(x));
        }
        let items = x.items()?;
        if items.len() > MAX_STIMULI {
            return Err(x.error(format!("{} stimuli; give at most {MAX_STIMULI}", items.len())));
        }
        if items.is_empty() {
            return Err(x.error("give at least one stimulus"));
        }
        match &items[0] {
            Value::Image(_) => each(
                &x,
                &items,
                |v| match v {
                    Value::Image(img) => Some(img.clone()),
                    _ => None,
                },
                "expected images only, found among them a",
            )
            .map(Stimuli::Images),
            Value::Str(_) => each(
                &x,
                &items,
                |v| match v {
                    Value::Str(s) => Some(s.to_string()),
                    _ => None,
                },
                "expected texts only, found among them a",
            )
            .map(Stimuli::Texts),
            other => Err(x
                .error(format!("expected images or texts, found a {}", other.type_name()))
                .help("image units take images (svg, emoji, photos); language-model units take strings")),
        }
    }
}

/// The stimuli with a data set's images loaded.
fn loaded(x: &Bound<Stimuli>, ctx: &mut dyn ToolCtx) -> Result<Stimuli, ToolError> {
    Ok(match &**x {
        Stimuli::Data(arg) => {
            let d = crate::vision::data::dataset_of(arg)?;
            Stimuli::Images(
                (0..d.items.len())
                    .map(|k| d.load(k, ctx).map(Arc::new).map_err(|e| x.error(e)))
                    .collect::<Result<_, _>>()?,
            )
        }
        Stimuli::Images(v) => Stimuli::Images(v.clone()),
        Stimuli::Texts(v) => Stimuli::Texts(v.clone()),
    })
}

fn responses(u: &Unit, s: &Stimuli, i: Name) -> Result<Vec<f64>, ToolError> {
    match s {
        Stimuli::Images(v) => crate::methods::units::image_activations(u, v),
        Stimuli::Texts(v) => crate::methods::units::text_activations(u, v),
        // Loaded before (`loaded`): a data set's images.
        Stimuli::Data(_) => return Err(ToolError::arg(i, "the data set was not loaded")),
    }
    .map_err(|e| e.blame(i))
}

tool! {
    /// Checks a description of a unit against stimuli: `positives` are stimuli the description says
    /// should drive the unit, `negatives` stimuli it says should not (ideally the same stimuli with the
    /// described property removed). Images (or a data set, e.g. `take(filter(emoji(), e => "dog" in
    /// e.label), 20)`) for an image model's channel; texts for a language model's neuron or head (its
    /// largest value over tokens; for a head, the largest norm of its output). Returns {score,
    /// positive, negative, positive_mean, negative_mean}: `score` is the chance that the unit responds
    /// more to a random positive than to a random negative (ROC AUC; 0.5 is chance, 1 a perfect
    /// description, below 0.5 a description that points the wrong way).
    ///
    /// ```assay
    /// let u = synthetic("vertical")
    /// let bars = r => svg("<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 20 20'><rect x='8' y='2' width='4' height='16' fill='black' transform='rotate({r} 10 10)'/></svg>")
    /// let s = score(u, [bars(0), bars(10)], [bars(90), bars(80)])
    /// assert s.score == 1 and s.positive_mean > s.negative_mean
    /// ```
    score in Vision -> Type::record();
    {
        /// a unit: a channel of an image model (synthetic() or unit()), or a neuron or head of a
        /// language model
        unit: Arg [Type::Handle(HandleKind::Unit)],
        /// stimuli the description predicts a response to (images, a data set's images, or texts)
        positives: Stimuli,
        /// stimuli it predicts no response to
        negatives: Stimuli,
    }
    score
}

fn score(p: score::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let u = p.unit.handle::<Unit>("a unit (from synthetic() or unit())")?;
    let pos = loaded(&p.positives, ctx)?;
    let neg = loaded(&p.negatives, ctx)?;
    if matches!((&pos, &neg), (Stimuli::Images(_), Stimuli::Texts(_)) | (Stimuli::Texts(_), Stimuli::Images(_))) {
        return Err(p
            .negatives
            .error("positives and negatives must be the same kind of stimulus (both images or both texts)"));
    }
    let (positives, negatives) = (responses(u, &pos, p.positives.name())?, responses(u, &neg, p.negatives.name())?);
    let (p, n) = (positives, negatives);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(Value::record([
        ("score", Value::Num(auc(&p, &n))),
        ("positive_mean", Value::Num(mean(&p))),
        ("negative_mean", Value::Num(mean(&n))),
        ("positive", Value::nums(p.iter().copied())),
        ("negative", Value::nums(n.iter().copied())),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_wins_and_half_ties() {
        assert_eq!(auc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(auc(&[1.0], &[2.0]), 0.0);
        assert_eq!(auc(&[1.0, 3.0], &[1.0, 2.0]), 0.625);
    }

    #[test]
    fn neuron_names_are_unique() {
        let mut names: Vec<&str> = all().map(|n| n.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), LOW_LEVEL.len() + CONCEPTS.len());
    }
}
