//! FIND's numeric functions (Schwettmann et al., 2023), generated from a
//! seed as FIND's make_numeric builds them: 85% simple functions over the
//! base families, 15% sums or products of two; served plain, with noise,
//! with a corrupted interval, or approximated by a small neural network.
//! Item `i` of a set depends only on the seed and `i` (its own ChaCha
//! stream), so a set is the same however it is split or resumed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::expr::{add, c, div, f, gt, le, lit, mul, sub, x, Fun, E};

/// How a function is served.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Variant {
    Plain,
    /// Noise added to every output: "normal", "uniform" or "poisson".
    Noise(&'static str),
    /// On `interval` the function is replaced by normal(mean, 0.1).
    Corrupted {
        interval: (f64, f64),
        mean: f64,
    },
    /// A small ReLU network fit to the function, run in ONNX Runtime.
    Net,
}

impl Variant {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Noise(_) => "noisy",
            Variant::Corrupted { .. } => "corrupted",
            Variant::Net => "net",
        }
    }
}

/// One function with its ground truth.
#[derive(Clone, Debug)]
pub(crate) struct Function {
    pub id: String,
    /// The family: `linear`, `polynomial`, ... or `sum:linear+step`.
    pub family: String,
    pub variant: Variant,
    /// The clean function.
    pub expr: E,
    pub description: String,
    /// For a `Net` item, the network that serves it (ONNX bytes).
    pub net: Option<Vec<u8>>,
    /// For a `Net` item, how far its network is from the function on the
    /// scoring points (NMSE; below [`NET_MAX_NMSE`]).
    pub net_nmse: Option<f64>,
}

fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn u(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    rng.random_range(lo..hi)
}

/// numpy's `np.linspace(lo, hi, 100)` choice, rounded to 0.1 as FIND does.
fn grid_choice(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    let i = rng.random_range(0..100) as f64;
    r1(lo + (hi - lo) * i / 99.0)
}

/// Horner form of Σ coeffs[i] x^(degree - i), highest power first.
fn horner(coeffs: &[f64]) -> E {
    let mut e = c(coeffs[0]);
    for k in &coeffs[1..] {
        e = add(mul(e, x()), c(*k));
    }
    e
}

fn poly_text(coeffs: &[f64]) -> String {
    let d = coeffs.len() - 1;
    let terms: Vec<String> = coeffs
        .iter()
        .enumerate()
        .map(|(i, k)| match d - i {
            0 => format!("{k}"),
            1 => format!("{k} x"),
            p => format!("{k} x^{p}"),
        })
        .collect();
    terms.join(" + ").replace("+ -", "- ")
}

const TAU: f64 = std::f64::consts::TAU;

/// One base function of a family, with its description.
fn base(rng: &mut ChaCha8Rng, family: &str) -> (E, String) {
    let scale = r1(u(rng, -30.0, 30.0));
    let bias = r1(u(rng, -30.0, 30.0));
    let amplitude = grid_choice(rng, -10.0, 10.0);
    let freq = grid_choice(rng, 0.1, TAU);
    let shift = grid_choice(rng, 0.1, TAU);
    match family {
        "linear" => {
            let (m, b) = (r1(u(rng, -10.0, 10.0)), r1(u(rng, -10.0, 10.0)));
            (add(mul(c(m), x()), c(b)), format!("a line, {m} x + {b}"))
        }
        "polynomial" => {
            let degree = rng.random_range(2..=5);
            let coeffs: Vec<f64> = (0..=degree).map(|_| r1(u(rng, -5.0, 5.0))).collect();
            let text = format!("a degree-{degree} polynomial, {}", poly_text(&coeffs));
            (horner(&coeffs), text)
        }
        "absolute" => (add(mul(c(scale), f(Fun::Abs, x())), c(bias)), format!("{scale} |x| + {bias}")),
        "root" => {
            let n = rng.random_range(1..=2);
            if n == 1 {
                (add(mul(c(scale), x()), c(bias)), format!("{scale} x + {bias} (a first root: a line)"))
            } else {
                (
                    add(mul(c(scale), f(Fun::Sqrt, x())), c(bias)),
                    format!("{scale} sqrt(x) + {bias}, undefined for x < 0"),
                )
            }
        }
        "logarithm" => {
            let b = r1(u(rng, 1.1, 10.0));
            (
                add(mul(c(scale), div(f(Fun::Log, x()), c(b.ln()))), c(bias)),
                format!("{scale} log base {b} of x + {bias}, undefined for x <= 0"),
            )
        }
        "step" => (
            add(mul(c(scale), gt(x(), c(0.0))), c(bias)),
            format!("a step at 0: {bias} for x <= 0, {} for x > 0", r1(scale + bias)),
        ),
        "relu" => {
            let leak = r1(u(rng, 0.0, 1.0));
            let e =
                add(mul(c(scale), add(mul(gt(x(), c(0.0)), x()), mul(le(x(), c(0.0)), mul(x(), c(leak))))), c(bias));
            (e, format!("a leaky ReLU: {scale} (x if x > 0 else {leak} x) + {bias}"))
        }
        "tanh" | "sin" | "cos" => {
            let fun = match family {
                "tanh" => Fun::Tanh,
                "sin" => Fun::Sin,
                _ => Fun::Cos,
            };
            let w = TAU / freq;
            let e = add(mul(c(amplitude), f(fun, mul(c(w), sub(x(), c(shift))))), c(bias));
            (e, format!("{amplitude} {family}(2π/{freq} (x - {shift})) + {bias}"))
        }
        "constant" => {
            let a = rng.random_range(-100..100) as f64;
            (c(a), format!("the constant {a}"))
        }
        "reciprocal" => {
            let mut a = r1(u(rng, -10.0, 10.0));
            if a == 0.0 {
                a = 1.0;
            }
            (div(c(1.0), mul(c(a), x())), format!("1 / ({a} x)"))
        }
        "gaussian" => {
            let (mean, std) = (r1(u(rng, -50.0, 50.0)), r1(u(rng, 1.0, 10.0)));
            let z = div(sub(x(), c(mean)), c(std));
            let e = mul(c(1.0 / (std * TAU.sqrt())), f(Fun::Exp, mul(c(-0.5), mul(z.clone(), z))));
            (e, format!("a Gaussian density with mean {mean} and standard deviation {std}"))
        }
        "rational" => {
            let num_order = rng.random_range(0..=4);
            let den_order = rng.random_range(num_order + 1..=5);
            let mut num: Vec<f64> = (0..=num_order).map(|_| r1(u(rng, -10.0, 10.0))).collect();
            let mut den: Vec<f64> = (0..=den_order).map(|_| r1(u(rng, -10.0, 10.0))).collect();
            // FIND lists coefficients lowest power first.
            num.reverse();
            den.reverse();
            let text = format!("the rational function ({}) / ({})", poly_text(&num), poly_text(&den));
            (div(horner(&num), horner(&den)), text)
        }
        "rectangle" => {
            let w = r1(u(rng, 1.0, 10.0));
            (le(f(Fun::Abs, x()), c(w / 2.0)), format!("a rectangle: 1 where |x| <= {}, else 0", w / 2.0))
        }
        "square_wave" => {
            let (period, sh) = (r1(u(rng, 1.0, 10.0)), r1(u(rng, -5.0, 5.0)));
            let s = f(Fun::Sin, mul(sub(x(), c(sh)), c(TAU / period)));
            (
                sub(mul(c(2.0), gt(s, c(0.0))), c(1.0)),
                format!("a square wave of period {period} shifted by {sh}, 1 and -1"),
            )
        }
        "ceil" => (f(Fun::Ceil, x()), "ceil(x)".into()),
        "floor" => (f(Fun::Floor, x()), "floor(x)".into()),
        other => unreachable!("no family {other}"),
    }
}

pub(crate) const SIMPLE: [&str; 16] = [
    "linear",
    "polynomial",
    "absolute",
    "root",
    "logarithm",
    "step",
    "relu",
    "tanh",
    "constant",
    "sin",
    "cos",
    "reciprocal",
    "gaussian",
    "rational",
    "rectangle",
    "square_wave",
];
const COMPOUND_PARTS: [&str; 9] =
    ["linear", "polynomial", "step", "relu", "constant", "ceil", "floor", "rectangle", "square_wave"];

/// The RNG of item `i` of the set with `seed`: its own stream.
pub(crate) fn item_rng(seed: u64, i: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(i);
    rng
}

/// The clean function of an item: a simple function (85%) or the sum or
/// product of two (15%); a corrupted item draws only lines, constants and
/// polynomials, as FIND corrupts only those.
fn draw(rng: &mut ChaCha8Rng, corrupted: bool) -> (E, String, String) {
    if corrupted {
        let fam = ["linear", "constant", "polynomial"][rng.random_range(0..3)];
        let (e, d) = base(rng, fam);
        return (e, fam.to_string(), d);
    }
    if rng.random_bool(0.85) {
        let fam = SIMPLE[rng.random_range(0..SIMPLE.len())];
        let (e, d) = base(rng, fam);
        return (e, fam.to_string(), d);
    }
    let (f1, f2) = (
        COMPOUND_PARTS[rng.random_range(0..COMPOUND_PARTS.len())],
        COMPOUND_PARTS[rng.random_range(0..COMPOUND_PARTS.len())],
    );
    let (e1, d1) = base(rng, f1);
    let (e2, d2) = base(rng, f2);
    if rng.random_bool(0.5) {
        (add(e1, e2), format!("sum:{f1}+{f2}"), format!("the sum of {d1} and {d2}"))
    } else {
        (mul(e1, e2), format!("product:{f1}*{f2}"), format!("the product of {d1} and {d2}"))
    }
}

/// The most a network item's network may differ from its function on the
/// scoring points (NMSE): an item whose network cannot follow its function
/// is drawn again, so the function it claims is the one an investigator sees.
pub(crate) const NET_MAX_NMSE: f64 = 0.01;

/// How often a network item's function is drawn again before the item is
/// served plain instead.
const NET_DRAWS: usize = 50;

/// Item `i` of the numeric set with `seed`.
pub(crate) fn function(seed: u64, i: u64) -> Function {
    let mut rng = item_rng(seed, i);
    // FIND's served mix: 483 plain, 191 corrupted, 176 noisy, 150 net.
    let v = rng.random_range(0..1000);
    let corrupted = (483..674).contains(&v);
    let (mut expr, mut family, mut description) = draw(&mut rng, corrupted);
    let finite = |e: &E| (-128..128).all(|k| e.eval(k as f64 + 0.5).is_finite());
    let mut net = None;
    if v >= 850 {
        // A network item: a function its network approximates closely (or,
        // if none of the draws is one, a plain item).
        for _ in 0..NET_DRAWS {
            if finite(&expr) {
                if let Some(fit) = Net::fit(&expr, seed, i).filter(|n| n.nmse(&expr) < NET_MAX_NMSE) {
                    net = Some(fit);
                    break;
                }
            }
            (expr, family, description) = draw(&mut rng, false);
        }
    }
    let variant = if corrupted {
        let mean = (0..100).map(|k| expr.eval(-128.0 + 256.0 * k as f64 / 99.0)).sum::<f64>() / 100.0;
        let a = r1(u(&mut rng, -100.0, 100.0));
        let interval = match rng.random_range(0..4) {
            0 => (f64::NEG_INFINITY, a),
            1 => (a, f64::INFINITY),
            _ => (a, r1(a + u(&mut rng, 5.0, 25.0))),
        };
        Variant::Corrupted { interval, mean }
    } else if (674..850).contains(&v) {
        // FIND's noise: normal with probability 0.33, uniform 0.33, else Poisson.
        Variant::Noise(match rng.random_range(0..3) {
            0 => "normal",
            1 => "uniform",
            _ => "poisson",
        })
    } else if net.is_some() {
        Variant::Net
    } else {
        Variant::Plain
    };
    let description = match &variant {
        Variant::Plain => description,
        Variant::Noise(kind) => format!("{description}, with {kind} noise of scale 1 added"),
        Variant::Corrupted { interval: (lo, hi), mean } => {
            let wher = match (lo.is_finite(), hi.is_finite()) {
                (false, _) => format!("x <= {hi}"),
                (_, false) => format!("x >= {lo}"),
                _ => format!("{lo} < x < {hi}"),
            };
            format!("{description}, except where {wher}: there it is noise around {:.3}", mean)
        }
        Variant::Net => format!("{description}, approximated by a ReLU network"),
    };
    let id = format!("n{i:04}");
    let net_nmse = net.as_ref().map(|n| n.nmse(&expr));
    let onnx = net.map(|n| n.onnx(&format!("FIND item {id}: {description}")));
    Function { id, family, variant, expr, description, net: onnx, net_nmse }
}

impl Function {
    /// The ground truth as Assay code (`fn f(x)`): the clean function.
    pub(crate) fn truth_code(&self) -> String {
        format!("fn f(x) {{\n  return {}\n}}\n", self.expr.assay())
    }

    /// The corrupted interval, if any.
    pub(crate) fn interval(&self) -> Option<(f64, f64)> {
        match self.variant {
            Variant::Corrupted { interval, .. } => Some(interval),
            _ => None,
        }
    }

    /// The black box as rhai (`fn f(x)`), noise and corruption included.
    /// Noise is drawn from a hash of the item's seed and x, so the same
    /// call gives the same value: runs replay byte for byte.
    pub(crate) fn box_source(&self, seed: u64) -> String {
        let clean = self.expr.rhai();
        let key = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ self.id.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))))
            % 2_147_483_647;
        let helpers = format!(
            "fn clean(x) {{\n  {clean}\n}}\n\
             fn hash01(x, k) {{\n  let m = 2147483647;\n  let q = if x.abs() < 1.0e12 {{ (x * 4096.0).round().to_int() }} else {{ 0 }};\n  \
             let h = ((q % m) + m) % m;\n  h = (h * 48271 + {key} + k * 7919) % m;\n  let hi = ((q / m) % m + m) % m;\n  \
             h = ((h + hi) * 48271) % m;\n  h = (h * 48271) % m;\n  h = (h * 48271) % m;\n  (h.to_float() + 0.5) / 2147483648.0\n}}\n\
             fn normal(x) {{\n  (-2.0 * hash01(x, 1).ln()).sqrt() * (6.283185307179586 * hash01(x, 2)).cos()\n}}\n"
        );
        let body = match &self.variant {
            Variant::Plain => "clean(x)".to_string(),
            // The network, run in ONNX Runtime by the harness (see `net_onnx`).
            Variant::Net => "net(x)".to_string(),
            Variant::Noise("normal") => "clean(x) + normal(x)".to_string(),
            Variant::Noise("uniform") => "clean(x) + 2.0 * hash01(x, 3) - 1.0".to_string(),
            Variant::Noise(_) => "let u = hash01(x, 4);\n  let k = 0;\n  let p = 0.36787944117144233;\n  let cdf = p;\n  while u > cdf && k < 40 {\n    k += 1;\n    p = p / k.to_float();\n    cdf += p;\n  }\n  clean(x) + k.to_float()".to_string(),
            Variant::Corrupted { interval: (lo, hi), mean } => {
                let cond = match (lo.is_finite(), hi.is_finite()) {
                    (false, _) => format!("x <= {}", lit(*hi)),
                    (_, false) => format!("x >= {}", lit(*lo)),
                    _ => format!("x > {} && x < {}", lit(*lo), lit(*hi)),
                };
                format!("if {cond} {{ {} + 0.1 * normal(x) }} else {{ clean(x) }}", lit(*mean))
            }
        };
        format!("{helpers}fn f(x) {{\n  {body}\n}}\n")
    }
}

/// Hidden units of the approximating network (FIND: Linear(1, 64), ReLU,
/// Linear(64, 1)).
pub(crate) const NET_WIDTH: usize = 64;

/// A network item's network: Linear(1, 64), ReLU, Linear(64, 1), in float32.
/// FIND trains an MLP by gradient descent; here the hidden layer is fixed
/// random ReLU features (kinks spread over [-128, 128], from the item's
/// stream) and the output layer is solved by least squares on 10,000
/// points, deterministically.
pub(crate) struct Net {
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: f32,
}

impl Net {
    /// The network fit to `expr` for item `i` of the set with `seed`; None
    /// if the least-squares system cannot be solved.
    fn fit(expr: &E, seed: u64, i: u64) -> Option<Net> {
        let mut rng = item_rng(seed ^ 0x4e45_5457_4f52_4b21, i);
        let (mut w1, mut b1) = (Vec::with_capacity(NET_WIDTH), Vec::with_capacity(NET_WIDTH));
        for _ in 0..NET_WIDTH {
            let kink: f64 = rng.random_range(-128.0..128.0);
            let s = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            w1.push((s / 128.0) as f32);
            b1.push((-s * kink / 128.0) as f32);
        }
        let n = 10_000;
        let xs: Vec<f32> = (0..n).map(|k| (-128.0 + 256.0 * k as f64 / (n - 1) as f64) as f32).collect();
        let hidden = |x: f32| -> Vec<f64> {
            let mut h: Vec<f64> = (0..NET_WIDTH).map(|j| f64::from((w1[j] * x + b1[j]).max(0.0))).collect();
            h.push(1.0);
            h
        };
        // The normal equations (65 x 65) with a tiny ridge: the features are
        // bounded ReLUs, so this is well conditioned and fast.
        let k = NET_WIDTH + 1;
        let (mut ata, mut aty) = (vec![0.0f64; k * k], vec![0.0f64; k]);
        for x in &xs {
            let h = hidden(*x);
            let y = expr.eval(f64::from(*x));
            for r in 0..k {
                if h[r] == 0.0 {
                    continue;
                }
                aty[r] += h[r] * y;
                for c in r..k {
                    ata[r * k + c] += h[r] * h[c];
                }
            }
        }
        let ata = nalgebra::DMatrix::from_fn(k, k, |r, c| {
            let v = if r <= c { ata[r * k + c] } else { ata[c * k + r] };
            v + if r == c { 1e-8 * n as f64 } else { 0.0 }
        });
        let coef = ata.cholesky()?.solve(&nalgebra::DVector::from_vec(aty));
        let w2: Vec<f32> = coef.iter().take(NET_WIDTH).map(|v| *v as f32).collect();
        Some(Net { w1, b1, w2, b2: coef[NET_WIDTH] as f32 })
    }

    /// The network's output at `x`, in float32 as ONNX Runtime computes it
    /// (up to the order of the final sum).
    pub(crate) fn eval(&self, x: f64) -> f64 {
        let x = x as f32;
        let mut y = 0.0f32;
        for j in 0..NET_WIDTH {
            y += (self.w1[j] * x + self.b1[j]).max(0.0) * self.w2[j];
        }
        f64::from(y + self.b2)
    }

    /// NMSE of the network against `expr` on the scoring points (x = i +
    /// 0.5, i in -128..127), as an answer is scored.
    pub(crate) fn nmse(&self, expr: &E) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for k in -128..128 {
            let x = k as f64 + 0.5;
            let t = expr.eval(x);
            if t.is_finite() {
                num += (t - self.eval(x)).powi(2);
                den += t * t;
            }
        }
        if den == 0.0 {
            return if num == 0.0 { 0.0 } else { f64::INFINITY };
        }
        num / den
    }

    /// The network as ONNX bytes, its doc string `doc`.
    fn onnx(&self, doc: &str) -> Vec<u8> {
        use assay_stdlib::models::build::{batched, model, GraphBuilder};
        use assay_stdlib::onnx::proto::{tensor_proto::DataType, GraphProto};
        let mut g = GraphBuilder::default();
        g.f32("w1", &[1, NET_WIDTH], &self.w1);
        g.f32("b1", &[NET_WIDTH], &self.b1);
        g.f32("w2", &[NET_WIDTH, 1], &self.w2);
        g.f32("b2", &[1], &[self.b2]);
        let h = g.node("MatMul", "/fc1/MatMul", &["x", "w1"], vec![]);
        let h = g.node("Add", "/fc1/Add", &[&h, "b1"], vec![]);
        let h = g.node("Relu", "/relu/Relu", &[&h], vec![]);
        let h = g.node("MatMul", "/fc2/MatMul", &[&h, "w2"], vec![]);
        g.node_to("Add", "/fc2/Add", &[&h, "b2"], vec![], "y");
        let graph = GraphProto {
            name: Some("net".into()),
            node: g.nodes,
            initializer: g.inits,
            input: vec![batched("x", DataType::Float, &[1])],
            output: vec![batched("y", DataType::Float, &[1])],
            ..Default::default()
        };
        assay_stdlib::onnx::graph::encode(&model(graph, doc.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NMSE of `net` (ONNX bytes, run in ONNX Runtime as the box runs it)
    /// against `expr` on the scoring points.
    fn served_nmse(net: &[u8], expr: &E) -> f64 {
        let run = crate::supervise::net_fn(net.to_vec());
        let (mut num, mut den) = (0.0, 0.0);
        for k in -128..128 {
            let x = k as f64 + 0.5;
            let t = expr.eval(x);
            if t.is_finite() {
                num += (t - run(x).unwrap()).powi(2);
                den += t * t;
            }
        }
        if den == 0.0 {
            return if num == 0.0 { 0.0 } else { f64::INFINITY };
        }
        num / den
    }

    fn stats(v: &mut [f64]) -> String {
        v.sort_by(f64::total_cmp);
        match v {
            [] => "none".into(),
            v => format!("{} items, median {:.2e}, max {:.2e}", v.len(), v[v.len() / 2], v[v.len() - 1]),
        }
    }

    /// Every network item of the default set (seed 0, 1000 items) is served
    /// by a network that follows its function (checked as served, in ONNX
    /// Runtime), so the function the item claims is the one its box shows;
    /// and the mix keeps FIND's share of network items. Prints the
    /// approximation errors before networks were checked (each item's first
    /// draw) and now.
    #[test]
    fn every_network_item_of_the_default_set_follows_its_function() {
        let (mut before, mut after, mut redrawn) = (Vec::new(), Vec::new(), 0);
        for i in 0..1000 {
            let mut rng = item_rng(0, i);
            let v = rng.random_range(0..1000);
            let (first, _, _) = draw(&mut rng, (483..674).contains(&v));
            let f = function(0, i);
            if v >= 850 && (-128..128).all(|k| first.eval(k as f64 + 0.5).is_finite()) {
                if let Some(n) = Net::fit(&first, 0, i) {
                    before.push(n.nmse(&first));
                }
            }
            let Some(net) = &f.net else { continue };
            assert_eq!(f.variant, Variant::Net, "{}", f.id);
            let served = served_nmse(net, &f.expr);
            assert!(served < NET_MAX_NMSE, "{}: its network is {served} from {}", f.id, f.description);
            assert!((served - f.net_nmse.unwrap()).abs() < 1e-4 * (1.0 + served), "{}: {served}", f.id);
            after.push(served);
            redrawn += usize::from(f.expr.assay() != first.assay());
        }
        assert!((120..=170).contains(&after.len()), "{} network items (FIND: 150 of 1000)", after.len());
        eprintln!("network items: before {}; now {} ({redrawn} drawn again)", stats(&mut before), stats(&mut after));
    }
}
