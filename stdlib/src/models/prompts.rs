//! Prompt sets with counterfactual pairs for circuit work, drawn from the
//! run's seed: indirect object identification, entity tracking and
//! variable binding. Each prompt is kept only where its answers are single
//! tokens of the model's tokenizer.

use assay_interpreter::{ToolError, Type, Value};

use super::text::tokenizer;
use crate::core::declare::{tool, ToolCtx, ToolResult};
use crate::core::random::stream_of;
use crate::onnx::handle::ModelHandle;

const NAMES: &[&str] = &[
    "Mary", "John", "Tom", "James", "Anna", "Sarah", "David", "Paul", "Lisa", "Mark", "Emma", "Jack", "Kate", "Peter",
    "Alice", "Robert",
];
const PLACES: &[&str] = &["store", "park", "school", "office", "beach", "market"];
const OBJECTS: &[&str] = &["drink", "book", "ball", "letter", "gift", "key"];

tool! {
    /// Indirect-object-identification prompts with counterfactual pairs, drawn from the run's seed:
    /// "When Mary and John went to the store, John gave a drink to" (answer " Mary", the indirect
    /// object; " John" repeats the subject). Each item is {clean, flipped, io, s, io_id, s_id}:
    /// `flipped` swaps the two names' roles (its answer is " John"), with the same number of tokens.
    /// Names are single tokens of the model's vocabulary.
    ///
    /// ```assay
    /// let lm = model("smollm2-135m")
    /// let p = ioi(lm, n: 3, seed: 1)
    /// assert len(p) == 3
    /// assert ends_with(p[0].clean, " to") and p[0].io != p[0].s
    /// assert len(tokenize(lm, p[0].clean).ids) == len(tokenize(lm, p[0].flipped).ids)
    /// ```
    ioi in Text -> Type::list(Type::record());
    {
        /// a language model (for its tokenizer)
        model: ModelHandle,
        /// how many prompts
        n: usize = 20,
        /// pin this call's random stream
        seed: Option<i64> = None,
    }
    ioi
}

fn ioi(p: ioi::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    use rand::seq::IndexedRandom;
    let tok = tokenizer(&p.model)?;
    let n = *p.n;
    if n > 10_000 {
        return Err(p.n.error("at most 10,000 prompts"));
    }
    let mut rng = stream_of(*p.seed, ctx);
    let names: Vec<(&str, u32)> =
        NAMES.iter().filter_map(|n| single(&tok, &format!(" {n}")).map(|id| (*n, id))).collect();
    if names.len() < 2 {
        return Err(p.model.error("the tokenizer has too few single-token names"));
    }
    let mut out = Vec::new();
    for _ in 0..n {
        let pick: Vec<&(&str, u32)> = names.choose_multiple(&mut rng, 2).collect();
        let ((io, io_id), (s, s_id)) = (*pick[0], *pick[1]);
        let place = PLACES.choose(&mut rng).copied().unwrap_or("store");
        let object = OBJECTS.choose(&mut rng).copied().unwrap_or("drink");
        let clean = format!("When {io} and {s} went to the {place}, {s} gave a {object} to");
        let flipped = format!("When {io} and {s} went to the {place}, {io} gave a {object} to");
        out.push(Value::record([
            ("clean", Value::str(clean)),
            ("flipped", Value::str(flipped)),
            ("io", Value::str(io)),
            ("s", Value::str(s)),
            ("io_id", Value::Num(io_id as f64)),
            ("s_id", Value::Num(s_id as f64)),
        ]));
    }
    Ok(Value::list(out))
}

/// The id of `text` if it is exactly one token.
fn single(tok: &tokenizers::Tokenizer, text: &str) -> Option<u32> {
    let enc = tok.encode(text, false).ok()?;
    (enc.get_ids().len() == 1).then(|| enc.get_ids()[0])
}

const THINGS: &[&str] = &[
    "apple", "book", "key", "ring", "coin", "shoe", "cup", "pen", "hat", "ball", "map", "clock", "bell", "lamp",
    "phone", "card",
];

tool! {
    /// Entity-tracking prompts (Kim & Schuster; Prakash et al.), drawn from the run's seed: "The apple
    /// is in box F, the book is in box Q, the key is in box B. Box Q contains the" (answer " book").
    /// Each item is {clean, flipped, answer, answer_id, flipped_answer, flipped_id, box}: `flipped`
    /// swaps the objects of the queried box and another box, so its answer differs while every token
    /// count stays the same. Objects and box letters are single tokens.
    ///
    /// ```assay
    /// let lm = model("smollm2-135m")
    /// let p = entity_tracking(lm, n: 2, seed: 3)
    /// assert ends_with(p[0].clean, " contains the") and p[0].answer != p[0].flipped_answer
    /// assert len(tokenize(lm, p[0].clean).ids) == len(tokenize(lm, p[0].flipped).ids)
    /// ```
    entity_tracking in Text -> Type::list(Type::record());
    {
        /// a language model (for its tokenizer)
        model: ModelHandle,
        /// how many prompts
        n: usize = 20,
        /// objects (and boxes) per prompt, 2 to 7
        boxes: usize = 3,
        /// pin this call's random stream
        seed: Option<i64> = None,
    }
    entity_tracking
}

fn entity_tracking(p: entity_tracking::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    use rand::seq::{IndexedRandom, SliceRandom};
    use rand::Rng;
    let tok = tokenizer(&p.model)?;
    let n = *p.n;
    let k = *p.boxes;
    if n > 10_000 {
        return Err(p.n.error("at most 10,000 prompts"));
    }
    if !(2..=7).contains(&k) {
        return Err(p.boxes.error(format!("`boxes` is between 2 and 7, found {k}")));
    }
    let mut rng = stream_of(*p.seed, ctx);
    let things: Vec<(&str, u32)> =
        THINGS.iter().filter_map(|t| single(&tok, &format!(" {t}")).map(|id| (*t, id))).collect();
    let letters: Vec<char> = ('A'..='Z').filter(|c| single(&tok, &format!(" {c}")).is_some()).collect();
    if things.len() < k || letters.len() < k {
        return Err(p.model.error("the tokenizer has too few single-token objects or letters"));
    }
    let mut out = Vec::new();
    for _ in 0..n {
        let objs: Vec<(&str, u32)> = things.choose_multiple(&mut rng, k).copied().collect();
        let mut boxes: Vec<char> = letters.choose_multiple(&mut rng, k).copied().collect();
        boxes.shuffle(&mut rng);
        let q = rng.random_range(0..k);
        let other = (q + rng.random_range(1..k)) % k;
        let text = |objs: &[(&str, u32)]| {
            let parts: Vec<String> =
                objs.iter().zip(&boxes).map(|((o, _), b)| format!("the {o} is in box {b}")).collect();
            let mut s = parts.join(", ");
            s.replace_range(0..1, "T");
            format!("{s}. Box {} contains the", boxes[q])
        };
        let mut swapped = objs.clone();
        swapped.swap(q, other);
        out.push(Value::record([
            ("clean", Value::str(text(&objs))),
            ("flipped", Value::str(text(&swapped))),
            ("answer", Value::str(objs[q].0)),
            ("answer_id", Value::Num(objs[q].1 as f64)),
            ("flipped_answer", Value::str(swapped[q].0)),
            ("flipped_id", Value::Num(swapped[q].1 as f64)),
            ("box", Value::str(boxes[q].to_string())),
        ]));
    }
    Ok(Value::list(out))
}

tool! {
    /// Variable-binding prompts, drawn from the run's seed: a chain of assignments with distractors,
    /// "c=7, a=2, b=c, d=b, d=" (answer "7", reached through `hops` references). Each item is {clean,
    /// flipped, answer, answer_id, flipped_answer, flipped_id}: `flipped` changes only the root value,
    /// so its answer differs and the token counts stay the same. Values are single digits.
    ///
    /// ```assay
    /// let lm = model("smollm2-135m")
    /// let p = variable_binding(lm, n: 2, hops: 2, seed: 1)
    /// assert ends_with(p[0].clean, "=") and p[0].answer != p[0].flipped_answer
    /// assert len(tokenize(lm, p[0].clean).ids) == len(tokenize(lm, p[0].flipped).ids)
    /// ```
    variable_binding in Text -> Type::list(Type::record());
    {
        /// a language model (for its tokenizer)
        model: ModelHandle,
        /// how many prompts
        n: usize = 20,
        /// references between the query and the value, 0 to 4
        hops: usize = 1,
        /// unrelated assignments, 0 to 4
        distractors: usize = 1,
        /// pin this call's random stream
        seed: Option<i64> = None,
    }
    variable_binding
}

fn variable_binding(p: variable_binding::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    use rand::seq::IndexedRandom;
    use rand::Rng;
    let tok = tokenizer(&p.model)?;
    let n = *p.n;
    let hops = *p.hops;
    let distractors = *p.distractors;
    if n > 10_000 {
        return Err(p.n.error("at most 10,000 prompts"));
    }
    if hops > 4 || distractors > 4 {
        return Err(ToolError::arg(
            if hops > 4 { p.hops.name() } else { p.distractors.name() },
            "`hops` and `distractors` are at most 4",
        ));
    }
    let mut rng = stream_of(*p.seed, ctx);
    let digit_id = |d: u32| single(&tok, &d.to_string());
    let names: Vec<char> = ('a'..='z').collect();
    let mut out = Vec::new();
    for _ in 0..n {
        let vars: Vec<char> = names.choose_multiple(&mut rng, hops + 1 + distractors).copied().collect();
        let (chain, others) = vars.split_at(hops + 1);
        let value = rng.random_range(0..10u32);
        let flipped_value = (value + rng.random_range(1..10u32)) % 10;
        let other_values: Vec<u32> = others.iter().map(|_| rng.random_range(0..10u32)).collect();
        // Root first, then each reference; distractors at random places.
        let mut lines: Vec<(usize, String)> = Vec::new();
        lines.push((0, format!("{}={{v}}", chain[0])));
        for h in 1..chain.len() {
            lines.push((h, format!("{}={}", chain[h], chain[h - 1])));
        }
        let mut order: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
        for (o, v) in others.iter().zip(&other_values) {
            let at = rng.random_range(0..=order.len());
            order.insert(at, format!("{o}={v}"));
        }
        let query = chain[chain.len() - 1];
        let text = |v: u32| format!("{}, {query}=", order.join(", ").replace("{v}", &v.to_string()));
        let (Some(id), Some(fid)) = (digit_id(value), digit_id(flipped_value)) else {
            return Err(p.model.error("the tokenizer does not have single-token digits"));
        };
        out.push(Value::record([
            ("clean", Value::str(text(value))),
            ("flipped", Value::str(text(flipped_value))),
            ("answer", Value::str(value.to_string())),
            ("answer_id", Value::Num(id as f64)),
            ("flipped_answer", Value::str(flipped_value.to_string())),
            ("flipped_id", Value::Num(fid as f64)),
        ]));
    }
    Ok(Value::list(out))
}
