//! The benchmark neurons' ground truth as stimuli: for each neuron, Assay
//! expressions for pictures that show its concept and pictures that do not,
//! written from the concept's definition (never from the neuron's
//! response), so that `assay bench neurons --baseline truth` checks that
//! every neuron shows what its ground truth says on stimuli an
//! investigator can make:
//! - low-level filters: drawings that have the feature (a saturated colour,
//!   stripes of one orientation, a shape in one half, a fine texture) and
//!   the same drawings without it (other colours, the other orientation,
//!   the other half, a coarse texture);
//! - emoji-annotation neurons: the drawings whose annotation names the
//!   concept (the first of them, its templates) and drawings whose
//!   annotation does not;
//! - concept neurons: the drawings of the concept's list (its ground
//!   truth), for AND both concepts' drawings side by side in one scene, and
//!   unrelated drawings (and, for AND, each concept alone).

use super::bench_concepts::{and_part, AND_SCENES};
use super::bench_neurons::{Group, ANDS, EMOJI_CONCEPTS, GROUPS, ORS};
use crate::vision::data::Item;

/// Unrelated drawings per negative set.
const OTHERS: usize = 30;

/// A drawing of `body` (SVG elements) on a 100x100 canvas.
fn svg(body: &str) -> String {
    format!("svg(\"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 100 100'>{body}</svg>\")")
}

/// Eight squares of one colour at different places and sizes.
fn squares(colour: &str) -> String {
    format!(
        "map(range(8), i => {})",
        svg(&format!("<rect x='{{5 + 9 * i}}' y='{{60 - 7 * i}}' width='{{15 + 2 * i}}' height='{{15 + 2 * i}}' fill='{colour}'/>"))
    )
}

/// Stripes of period 10 to 45 units, vertical or horizontal, in several colours.
fn stripes(vertical: bool) -> String {
    let (w, h, rw, rh) =
        if vertical { ("{s[0]}", "100", "{s[0] / 2}", "100") } else { ("100", "{s[0]}", "100", "{s[0] / 2}") };
    format!(
        "map([[10, \"black\"], [15, \"navy\"], [20, \"black\"], [25, \"maroon\"], [30, \"black\"], [35, \"green\"], [40, \"black\"], [45, \"purple\"]], s => {})",
        svg(&format!("<defs><pattern id='p' width='{w}' height='{h}' patternUnits='userSpaceOnUse'><rect width='{rw}' height='{rh}' fill='{{s[1]}}'/></pattern></defs><rect width='100' height='100' fill='url(#p)'/>"))
    )
}

/// Eight dark circles in one region: x and y ranges of their centres.
fn circles(x: (u32, u32), y: (u32, u32)) -> String {
    format!(
        "map(range(8), i => {})",
        svg(&format!(
            "<circle cx='{{{} + {} * (i % 4)}}' cy='{{{} + {} * floor(i / 4)}}' r='{{8 + i}}' fill='black'/>",
            x.0,
            (x.1 - x.0) / 3,
            y.0,
            y.1 - y.0
        ))
    )
}

/// Checks (a chequerboard) with cells of `cell` units, `n` boards.
fn checks(cells: &[u32]) -> String {
    let list: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
    format!(
        "map([{}], s => {})",
        list.join(", "),
        svg("<defs><pattern id='p' width='{2 * s}' height='{2 * s}' patternUnits='userSpaceOnUse'><rect width='{s}' height='{s}' fill='black'/><rect x='{s}' y='{s}' width='{s}' height='{s}' fill='black'/></pattern></defs><rect width='100' height='100' fill='url(#p)'/>")
    )
}

/// A low-level filter's stimuli.
fn low_level(name: &str) -> Option<(String, String)> {
    let colours = ["#ff0000", "#00ff00", "#0000ff"];
    let others = ["orange", "yellow", "magenta", "cyan", "grey", "black", "pink", "white"];
    let colour = |c: usize| {
        let pos = squares(colours[c]);
        let mut neg: Vec<String> =
            colours.iter().enumerate().filter(|(i, _)| *i != c).map(|(_, x)| squares(x)).collect();
        neg.extend(others.iter().map(|x| squares(x)));
        (pos, format!("flatten([{}])", neg.join(", ")))
    };
    Some(match name {
        "red" => colour(0),
        "green" => colour(1),
        "blue" => colour(2),
        "vertical" => (stripes(true), stripes(false)),
        "horizontal" => (stripes(false), stripes(true)),
        "left" => (circles((15, 35), (20, 75)), circles((65, 85), (20, 75))),
        "top" => (circles((20, 80), (12, 30)), circles((20, 80), (68, 86))),
        "fine_texture" => (checks(&[1, 2, 3]), checks(&[25, 34, 50])),
        _ => return None,
    })
}

/// `filter(emoji(), ...)` of these items by name (their hex code).
fn by_name(items: &[Item], idx: &[usize]) -> String {
    let names: Vec<String> = idx.iter().map(|&i| format!("\"{}\"", items[i].name)).collect();
    format!("filter(emoji(), e => e.name in [{}])", names.join(", "))
}

/// `filter(emoji(), ...)` of the drawings with these annotations.
fn by_label(labels: &[&str]) -> String {
    let list: Vec<String> = labels.iter().map(|l| format!("\"{l}\"")).collect();
    format!("filter(emoji(), e => e.label in [{}])", list.join(", "))
}

/// Drawings shown by no group and not annotated with `word`, spread over the set.
fn unrelated(items: &[Item], word: Option<&str>) -> Vec<usize> {
    let fits = |it: &Item| {
        let l = it.label.as_deref().unwrap_or("");
        !GROUPS.iter().any(|g| g.emoji.contains(&l)) && word.is_none_or(|w| !names_word(l, w))
    };
    let pool: Vec<usize> = (0..items.len()).filter(|&i| fits(&items[i])).collect();
    (0..OTHERS.min(pool.len())).map(|k| pool[k * pool.len() / OTHERS.min(pool.len()).max(1)]).collect()
}

/// Whether an annotation has `word` as a whole word (as the emoji model's templates are chosen).
fn names_word(label: &str, word: &str) -> bool {
    label.to_lowercase().split(|c: char| !c.is_alphanumeric()).any(|w| w == word)
}

fn group(name: &str) -> Option<&'static Group> {
    GROUPS.iter().find(|g| g.name == name)
}

/// An AND pair's scenes: both concepts' drawings side by side, as the
/// detectors were trained on them.
fn pair_scenes(items: &[Item], a: &str, b: &str) -> Option<String> {
    let (left, right, scale) = super::bench_concepts::scene_parts();
    let part = |i: usize, x: f64| {
        format!(
            "{{image: item(filter(emoji(), e => e.name == \"{}\"), 0, background: \"none\").image, x: {x}, y: 0.5, scale: {scale}}}",
            items[i].name
        )
    };
    let mut scenes = Vec::new();
    for k in 0..AND_SCENES {
        let (x, y) = (and_part(items, a, k)?, and_part(items, b, k)?);
        scenes.push(format!("scene([{}, {}])", part(x, left), part(y, right)));
    }
    Some(format!("[{}]", scenes.join(", ")))
}

/// The ground-truth stimuli of benchmark neuron `name`: Assay expressions
/// for its positives and negatives.
pub fn truth_stimuli(name: &str) -> Result<(String, String), String> {
    if let Some(s) = low_level(name) {
        return Ok(s);
    }
    let items = crate::vision::data::emoji_items()?;
    if let Some((_, word, _)) = EMOJI_CONCEPTS.iter().find(|(n, _, _)| *n == name) {
        let named: Vec<usize> =
            (0..items.len()).filter(|&i| names_word(items[i].label.as_deref().unwrap_or(""), word)).take(20).collect();
        return Ok((by_name(&items, &named), by_name(&items, &unrelated(&items, Some(word)))));
    }
    let others = by_name(&items, &unrelated(&items, None));
    if let Some(g) = group(name) {
        return Ok((by_label(g.emoji), others));
    }
    if let Some((a, b)) = ORS.iter().find(|(a, b)| format!("{a}_or_{b}") == name) {
        let (ga, gb) = (group(a).ok_or("unknown group")?, group(b).ok_or("unknown group")?);
        let both: Vec<&str> = ga.emoji.iter().chain(gb.emoji.iter()).copied().collect();
        return Ok((by_label(&both), others));
    }
    if let Some((a, b)) = ANDS.iter().find(|(a, b)| format!("{a}_and_{b}") == name) {
        let (ga, gb) = (group(a).ok_or("unknown group")?, group(b).ok_or("unknown group")?);
        let pos = pair_scenes(&items, a, b).ok_or_else(|| format!("no drawings for {a} and {b}"))?;
        // Each concept alone, and unrelated drawings: one data set.
        let alone: Vec<String> =
            ga.emoji.iter().take(5).chain(gb.emoji.iter().take(5)).map(|l| format!("\"{l}\"")).collect();
        let names: Vec<String> = unrelated(&items, None).iter().map(|&i| format!("\"{}\"", items[i].name)).collect();
        let neg =
            format!("filter(emoji(), e => e.label in [{}] or e.name in [{}])", alone.join(", "), names.join(", "));
        return Ok((pos, neg));
    }
    Err(format!("no benchmark neuron \"{name}\""))
}
