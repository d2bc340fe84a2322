//! Text in and out of language models: tokens, and greedy generation
//! (the whole prompt is re-run per token; these models are small).

use assay_interpreter::{Args, Registry, Signature, ToolCtx, ToolError, Type, Value};
use ndarray::{ArrayD, Axis};

use crate::core::FnTool;
use crate::onnx::tools::model_of;

fn tokenizer(a: &Args, i: usize) -> Result<std::sync::Arc<tokenizers::Tokenizer>, ToolError> {
    let m = model_of(a, i)?;
    m.tokenizer.clone().ok_or_else(|| {
        ToolError::arg(i, "this model has no tokenizer").help("language models from model(\"smollm2-135m\") have one")
    })
}

fn tokenize_sig() -> Signature {
    Signature::new("tokenize", "text", "The token ids of a text under the model's tokenizer, and the tokens themselves.")
        .param("model", Type::Handle("model"), "a language model")
        .param("text", Type::Str, "text")
        .returns(Type::record_of(&[("ids", Type::list(Type::Num)), ("tokens", Type::list(Type::Str))]))
        .example("let lm = model(\"smollm2-135m\")\nlet t = tokenize(lm, \"The capital of France is\")\nassert len(t.ids) == 5 and t.tokens[1] == \"Ġcapital\"")
}
fn tokenize(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let tok = tokenizer(a, 0)?;
    let enc = tok.encode(a.str(1)?, false).map_err(|e| ToolError::arg(1, e.to_string()))?;
    Ok(Value::record([
        ("ids", Value::nums(enc.get_ids().iter().map(|x| *x as f64))),
        ("tokens", Value::list(enc.get_tokens().iter().map(Value::str).collect())),
    ]))
}

fn detokenize_sig() -> Signature {
    Signature::new("detokenize", "text", "The text of token ids.")
        .param("model", Type::Handle("model"), "a language model")
        .param("ids", Type::numbers(), "token ids")
        .returns(Type::Str)
        .example("let lm = model(\"smollm2-135m\")\nassert detokenize(lm, tokenize(lm, \"a, b\").ids) == \"a, b\"")
}
fn detokenize(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let tok = tokenizer(a, 0)?;
    let vocab = tok.get_vocab_size(true) as f64;
    let ids = a.numbers(1)?;
    if let Some(bad) = ids.iter().find(|x| **x < 0.0 || **x >= vocab || x.fract() != 0.0) {
        return Err(ToolError::arg(1, format!("{bad} is not a token id (0..{vocab})")));
    }
    let ids: Vec<u32> = ids.iter().map(|x| *x as u32).collect();
    tok.decode(&ids, false).map(Value::str).map_err(|e| ToolError::arg(1, e.to_string()))
}

fn generate_sig() -> Signature {
    Signature::new("generate", "text", "Greedy continuation of a prompt: `n` new tokens, each the most likely next one. Returns the new text only.")
        .param("model", Type::Handle("model"), "a language model")
        .param("prompt", Type::Str, "the text to continue")
        .opt("n", Type::Num, Value::Num(8.0), "how many tokens to add")
        .returns(Type::Str)
        .example("let lm = model(\"smollm2-135m\")\nassert starts_with(generate(lm, \"The capital of France is\", n: 2), \" Paris\")")
}
fn generate(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let m = model_of(a, 0)?;
    let tok = tokenizer(a, 0)?;
    let n = a.count(2)?;
    if n > 256 {
        return Err(ToolError::arg(2, "at most 256 new tokens"));
    }
    let mut ids: Vec<u32> =
        tok.encode(a.str(1)?, false).map_err(|e| ToolError::arg(1, e.to_string()))?.get_ids().to_vec();
    if ids.is_empty() {
        return Err(ToolError::arg(1, "the prompt is empty"));
    }
    let start = ids.len();
    let input = m.inputs.first().map(|p| p.name.clone()).unwrap_or_default();
    let out = m.output_names();
    let logits_name = out.first().cloned().unwrap_or_default();
    for _ in 0..n {
        let x = ArrayD::from_shape_vec(vec![1, ids.len()], ids.iter().map(|x| *x as f32).collect())
            .map_err(|e| ToolError::new(e.to_string()))?;
        let res = m.run("", || Ok(m.proto.clone()), vec![(input.clone(), x)], &out).map_err(ToolError::new)?;
        let logits = &res[&logits_name];
        if logits.ndim() != 3 {
            return Err(ToolError::arg(0, "the model's first output is not [N, T, vocab] logits"));
        }
        let last = logits.index_axis(Axis(0), 0).index_axis(Axis(0), ids.len() - 1).to_owned();
        let mut best = 0;
        for (j, v) in last.iter().enumerate() {
            if *v > last[best] {
                best = j;
            }
        }
        ids.push(best as u32);
    }
    tok.decode(&ids[start..], false).map(Value::str).map_err(|e| ToolError::new(e.to_string()))
}

pub(crate) fn register(r: &mut Registry) {
    for (sig, f) in [
        (tokenize_sig as fn() -> Signature, tokenize as crate::core::ToolFn),
        (detokenize_sig, detokenize),
        (generate_sig, generate),
        (ioi_sig, ioi),
    ] {
        r.register(FnTool::new(sig, f));
    }
}

const NAMES: &[&str] = &[
    "Mary", "John", "Tom", "James", "Anna", "Sarah", "David", "Paul", "Lisa", "Mark", "Emma", "Jack", "Kate", "Peter",
    "Alice", "Robert",
];
const PLACES: &[&str] = &["store", "park", "school", "office", "beach", "market"];
const OBJECTS: &[&str] = &["drink", "book", "ball", "letter", "gift", "key"];

fn ioi_sig() -> Signature {
    Signature::new("ioi", "text", "Indirect-object-identification prompts with counterfactual pairs, drawn from the run's seed: \"When Mary and John went to the store, John gave a drink to\" (answer \" Mary\", the indirect object; \" John\" repeats the subject). Each item is {clean, flipped, io, s, io_id, s_id}: `flipped` swaps the two names' roles (its answer is \" John\"), with the same number of tokens. Names are single tokens of the model's vocabulary.")
        .param("model", Type::Handle("model"), "a language model (for its tokenizer)")
        .opt("n", Type::Num, Value::Num(20.0), "how many prompts")
        .opt("seed", Type::Num, Value::None, "pin this call's random stream")
        .returns(Type::list(Type::record()))
        .example("let lm = model(\"smollm2-135m\")\nlet p = ioi(lm, n: 3, seed: 1)\nassert len(p) == 3\nassert ends_with(p[0].clean, \" to\") and p[0].io != p[0].s\nassert len(tokenize(lm, p[0].clean).ids) == len(tokenize(lm, p[0].flipped).ids)")
}
fn ioi(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    use rand::seq::IndexedRandom;
    use rand::SeedableRng;
    let tok = tokenizer(a, 0)?;
    let n = a.count(1)?;
    if n > 10_000 {
        return Err(ToolError::arg(1, "at most 10,000 prompts"));
    }
    let mut rng = match a.opt_int(2)? {
        Some(s) => assay_interpreter::step_rng(s as u64, u64::MAX),
        None => rand_chacha::ChaCha8Rng::from_rng(ctx.rng()),
    };
    let id_of = |name: &str| -> Option<u32> {
        let enc = tok.encode(format!(" {name}"), false).ok()?;
        (enc.get_ids().len() == 1).then(|| enc.get_ids()[0])
    };
    let names: Vec<(&str, u32)> = NAMES.iter().filter_map(|n| id_of(n).map(|id| (*n, id))).collect();
    if names.len() < 2 {
        return Err(ToolError::arg(0, "the tokenizer has too few single-token names"));
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
