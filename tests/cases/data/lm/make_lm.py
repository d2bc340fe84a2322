"""Builds the exported language-model fixtures and their PyTorch references.

Small randomly initialised models from Hugging Face configurations (no
weights are downloaded), exported the ways researchers export them:

- `torch.onnx.export` with the TorchScript exporter (`*-torchscript.onnx`)
  and with the dynamo exporter (`*-dynamo.onnx`) where it works;
- for decoders, the dynamo exporter at opset 23 with SDPA attention
  (`*-dynamo-opset23.onnx`: ONNX's fused `Attention` op);
- Hugging Face Optimum (`*-optimum.onnx`, and for decoders
  `*-optimum-past.onnx` with past key values);
- for BERT, Optimum's export through ONNX Runtime's transformer optimizer
  (`bert-ort-fused.onnx`: attention in fused com.microsoft.Attention ops).

Families: GPT-2 (fused QKV in Conv1D), Llama (grouped-query attention,
rotary positions), Qwen2 (GQA with biased QKV), BERT (an encoder, post-norm);
GPT-NeoX/Pythia, Phi and Falcon (parallel residual blocks; partial rotary;
Falcon multi-query), OPT (the stream flattened around the MLP), OPT-350m's
layout (post-norm, projected embeddings), BLOOM (ALiBi, probabilities
reshaped to [N*H, T, S]), Gemma-2 (sandwich norms, soft-capping), Mistral
(sliding windows), Phi-3 (one QKV projection sliced) and Gemma (RMSNorm by
(1 + w), scaled embeddings, multi-query).

Next to each model, `<family>-ref.npz` holds what PyTorch computes with
forward hooks for the inputs `target` and `source` (token ids, [1, T]):
`logits` (the target's), `heads.L` (layer L's per-head attention output,
the input of its output projection, [1, T, heads*head_dim]), `probs.L`
(attention probabilities, [1, heads, T, T]), `hidden.L` (the residual
stream after layer L, before any final norm), `effects` ([layers, heads]:
metric(target with head (L, h) patched from source) - metric(target),
metric = logits[0, -1, a] - logits[0, -1, b]), `zero` (the same with head
(L, h)'s output zeroed instead), `direct` ([layers, heads]:
path patching's direct effect, head (L, h) from source with every other
head frozen at its target value), `greedy` (decoders: 6 tokens greedy
generation continues the target with), `dla` (decoders: [layers, heads, 2],
each head's direct logit attribution to a and b at the last position, the
final norm's scale frozen), `circuit` ([full, circuit, ablated]: the mean
metric over target and source with heads (0, 1) and (1, 2) kept and every
other head mean-ablated over both prompts and all positions), `clean` and
`a`, `b`; `resid_in.L` (the stream layer L reads), `mlp.L` (layer L's
MLP output as it is added to the stream; OPT's is [N*T, D]) and, where the
read-out is linear, `dla_mlp` ([layers, 2], each MLP's direct logit
attribution as `dla` computes it), `q.L`, `k.L`, `v.L` (layer L's query,
key and value projections' outputs, where the family has them apart).

The tests need no Python: the outputs are committed. To rebuild (pinned
versions; CPU wheels are enough):

    python -m venv /tmp/lmvenv && /tmp/lmvenv/bin/pip install \
        torch==2.15.0 transformers==4.57.6 optimum-onnx==0.1.0 \
        onnx==1.23.2 onnxscript==0.7.2 onnxruntime==1.31.1 numpy
    /tmp/lmvenv/bin/python tests/cases/data/lm/make_lm.py
"""

import json
import os
import sys
import tempfile
import warnings

import numpy as np
import torch
import transformers as tf

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = 64
TARGET = [[5, 17, 9, 33, 2, 41, 12]]
SOURCE = [[5, 17, 30, 33, 2, 41, 12]]
A, B = 7, 11


def configs():
    common = dict(vocab_size=VOCAB, initializer_range=0.3, attn_implementation="eager")
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64)
    return {
        "gpt2": (tf.GPT2Config(n_positions=32, n_embd=32, n_layer=2, n_head=4, **common), tf.GPT2LMHeadModel, True),
        "llama": (
            tf.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False, **common),
            tf.LlamaForCausalLM, True),
        "qwen2": (
            tf.Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False, **common),
            tf.Qwen2ForCausalLM, True),
        "bert": (tf.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                               max_position_embeddings=32, **common), tf.BertForMaskedLM, False),
        # Parallel residual blocks: attention and MLP read the same stream
        # and are added to it together (x + attn(ln1(x)) + mlp(ln2(x))).
        "neox": (tf.GPTNeoXConfig(intermediate_size=64, rotary_pct=0.25, use_parallel_residual=True,
                                  tie_word_embeddings=False, **small, **common), tf.GPTNeoXForCausalLM, True),
        "phi": (tf.PhiConfig(intermediate_size=64, partial_rotary_factor=0.5, **small, **common),
                tf.PhiForCausalLM, True),
        "falcon": (tf.FalconConfig(parallel_attn=True, new_decoder_architecture=False, multi_query=True,
                                   alibi=False, bias=False, **small, **common), tf.FalconForCausalLM, True),
        # Sliding-window attention over grouped-query heads.
        "mistral": (tf.MistralConfig(intermediate_size=64, num_key_value_heads=2, sliding_window=4,
                                     tie_word_embeddings=False, **small, **common), tf.MistralForCausalLM, True),
        # One fused QKV projection sliced into queries, keys and values (GQA).
        "phi3": (tf.Phi3Config(intermediate_size=64, num_key_value_heads=2, pad_token_id=0,
                               tie_word_embeddings=False, **small, **common), tf.Phi3ForCausalLM, True),
        # RMSNorm scaled by (1 + w), embeddings scaled by sqrt(D), GeGLU.
        "gemma": (tf.GemmaConfig(intermediate_size=64, num_key_value_heads=1, head_dim=8, **small, **common),
                  tf.GemmaForCausalLM, True),
        # OPT flattens the stream to [N*T, D] around its MLP.
        "opt": (tf.OPTConfig(ffn_dim=64, word_embed_proj_dim=32, do_layer_norm_before=True, init_std=0.3,
                             vocab_size=VOCAB, attn_implementation="eager", **small), tf.OPTForCausalLM, True),
        # OPT-350m's layout: post-norm layers, embeddings projected in and out.
        "opt350m": (tf.OPTConfig(ffn_dim=64, word_embed_proj_dim=16, do_layer_norm_before=False, init_std=0.3,
                                 vocab_size=VOCAB, attn_implementation="eager", **small), tf.OPTForCausalLM, True),
        # ALiBi: the probabilities are reshaped to [N*H, T, S] around the V matmul.
        "bloom": (tf.BloomConfig(hidden_size=32, n_layer=2, n_head=4, **common), tf.BloomForCausalLM, True),
        # Sandwich norms around attention and MLP, soft-capped logits (scores are
        # not capped: SDPA, which Optimum and the opset-23 export use, cannot).
        "gemma2": (tf.Gemma2Config(intermediate_size=64, num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=8,
                                   sliding_window=4, final_logit_softcapping=30.0, attn_logit_softcapping=None,
                                   tie_word_embeddings=False, **small, **common), tf.Gemma2ForCausalLM, True),
    }


# Per family: (the layers, a layer's attention output projection (its input
# is the heads), a layer's MLP output as it is added to the residual stream
# (a module whose output that is), the final norm (None: no linear read-out
# to attribute through), whether the projection is GPT-2's Conv1D).
SPEC = {
    "gpt2": (lambda m: m.transformer.h, lambda l: l.attn.c_proj, lambda l: l.mlp, lambda m: m.transformer.ln_f),
    "llama": (lambda m: m.model.layers, lambda l: l.self_attn.o_proj, lambda l: l.mlp, lambda m: m.model.norm),
    "bert": (lambda m: m.bert.encoder.layer, lambda l: l.attention.output.dense, lambda l: l.output.dense,
             lambda m: None),
    "neox": (lambda m: m.gpt_neox.layers, lambda l: l.attention.dense, lambda l: l.mlp,
             lambda m: m.gpt_neox.final_layer_norm),
    "phi": (lambda m: m.model.layers, lambda l: l.self_attn.dense, lambda l: l.mlp, lambda m: m.model.final_layernorm),
    "falcon": (lambda m: m.transformer.h, lambda l: l.self_attention.dense, lambda l: l.mlp,
               lambda m: m.transformer.ln_f),
    "opt": (lambda m: m.model.decoder.layers, lambda l: l.self_attn.out_proj, lambda l: l.fc2,
            lambda m: m.model.decoder.final_layer_norm),
    "bloom": (lambda m: m.transformer.h, lambda l: l.self_attention.dense, lambda l: l.mlp.dense_4h_to_h,
              lambda m: m.transformer.ln_f),
    # Gemma-2's post-attention norm stands between the heads and the
    # stream, and its logits are soft-capped: no linear attribution.
    "gemma2": (lambda m: m.model.layers, lambda l: l.self_attn.o_proj, lambda l: l.post_feedforward_layernorm,
               lambda m: None),
    # Post-norm: each layer's LayerNorm stands between the heads and the
    # logits.
    "opt350m": (lambda m: m.model.decoder.layers, lambda l: l.self_attn.out_proj, lambda l: l.fc2, lambda m: None),
}
SPEC["qwen2"] = SPEC["llama"]
SPEC["mistral"] = SPEC["llama"]
SPEC["phi3"] = SPEC["llama"]
SPEC["gemma"] = SPEC["llama"]

# Per family: a layer's query, key and value projections (GPT-2's one
# fused projection, split in three). Absent: the graph never separates them
# into [N, T, width] tensors (GPT-NeoX, Falcon and BLOOM interleave them per
# head in one projection).
QKV = {
    "gpt2": lambda l: [l.attn.c_attn],
    "llama": lambda l: [l.self_attn.q_proj, l.self_attn.k_proj, l.self_attn.v_proj],
    "bert": lambda l: [l.attention.self.query, l.attention.self.key, l.attention.self.value],
}
for _f in ["qwen2", "phi", "opt", "opt350m", "gemma2", "mistral", "gemma"]:
    QKV[_f] = QKV["llama"]
QKV["phi3"] = lambda l: [l.self_attn.qkv_proj]


def layers(model, family):
    return SPEC[family][0](model)


def out_proj(model, family):
    """Each layer's attention output projection: its input is the heads."""
    return [SPEC[family][1](l) for l in layers(model, family)]


def references(model, family, cfg):
    heads = cfg.num_attention_heads
    target, source = torch.tensor(TARGET), torch.tensor(SOURCE)
    projs = out_proj(model, family)
    seen = {}

    def keep(i):
        def hook(_m, args):
            seen[i] = args[0].detach().clone()
        return hook

    handles = [p.register_forward_pre_hook(keep(i)) for i, p in enumerate(projs)]
    stream, stream_in, mlp = {}, {}, {}

    def first(x):
        return (x[0] if isinstance(x, tuple) else x).detach().clone()

    def keep_stream(i):
        def hook(_m, _args, out):
            stream[i] = first(out)
        return hook

    def keep_in(i):
        def hook(_m, args, kwargs):
            stream_in[i] = first(args[0] if args else kwargs["hidden_states"])
        return hook

    def keep_mlp(i):
        def hook(_m, _args, out):
            mlp[i] = first(out)
        return hook

    handles += [l.register_forward_hook(keep_stream(i)) for i, l in enumerate(layers(model, family))]
    handles += [l.register_forward_pre_hook(keep_in(i), with_kwargs=True) for i, l in enumerate(layers(model, family))]
    handles += [SPEC[family][2](l).register_forward_hook(keep_mlp(i)) for i, l in enumerate(layers(model, family))]
    qkv = {}

    def keep_qkv(i, j):
        def hook(_m, _args, out):
            qkv[(i, j)] = first(out)
        return hook

    for i, l in enumerate(layers(model, family)):
        for j, mod in enumerate(QKV[family](l) if family in QKV else []):
            handles.append(mod.register_forward_hook(keep_qkv(i, j)))
    with torch.no_grad():
        out = model(target, output_attentions=True)
        ref = {"logits": out.logits.numpy(), "target": target.numpy().astype(np.int64),
               "source": source.numpy().astype(np.int64), "a": np.array(A), "b": np.array(B)}
        for i in range(len(projs)):
            ref[f"heads.{i}"] = seen[i].numpy()
            ref[f"probs.{i}"] = out.attentions[i].numpy()
            ref[f"hidden.{i}"] = stream[i].numpy()
            ref[f"resid_in.{i}"] = stream_in[i].numpy()
            ref[f"mlp.{i}"] = mlp[i].numpy()
            if family in ("gpt2", "phi3"):  # one fused projection: [q | k | v]
                d = cfg.hidden_size // cfg.num_attention_heads
                kv = getattr(cfg, "num_key_value_heads", cfg.num_attention_heads) * d
                qkv[(i, 0)], qkv[(i, 1)], qkv[(i, 2)] = qkv[(i, 0)].split([heads * d, kv, kv], dim=-1)
            for j, part in enumerate("qkv"):
                if (i, j) in qkv:
                    ref[f"{part}.{i}"] = qkv[(i, j)].numpy()
        target_heads = dict(seen)
        target_mlp = dict(mlp)
        model(source)
        source_heads = dict(seen)
        for h in handles:
            h.remove()

        def metric(logits):
            return float(logits[0, -1, A] - logits[0, -1, B])

        clean = metric(model(target).logits)
        effects = np.zeros((len(projs), heads), dtype=np.float32)
        width = target_heads[0].shape[-1] // heads
        for layer, proj in enumerate(projs):
            for h in range(heads):
                def patch(_m, args, h=h, layer=layer):
                    x = args[0].clone()
                    x[..., h * width:(h + 1) * width] = source_heads[layer][..., h * width:(h + 1) * width]
                    return (x,)
                handle = proj.register_forward_pre_hook(patch)
                effects[layer, h] = metric(model(target).logits) - clean
                handle.remove()
        if hasattr(model, "generate") and family != "bert":
            more = model.generate(target, max_new_tokens=6, do_sample=False, use_cache=True, pad_token_id=0)
            ref["greedy"] = more[0, target.shape[1]:].numpy().astype(np.int64)
        # A circuit by mean ablation: heads (0, 1) and (1, 2) kept, every
        # other head replaced by its mean over both prompts and all
        # positions; the mean metric over the two prompts for the full
        # model, the circuit and everything ablated.
        keep = {(0, 1), (1, 2)}
        means = {l: torch.cat([target_heads[l], source_heads[l]], 0).mean(dim=(0, 1)) for l in range(len(projs))}

        def ablated_run(ids, kept):
            def mean_ablate(_m, args, layer):
                x = args[0].clone()
                for h in range(heads):
                    if (layer, h) not in kept:
                        x[..., h * width:(h + 1) * width] = means[layer][h * width:(h + 1) * width]
                return (x,)
            hs = [p.register_forward_pre_hook(lambda m, a, i=i: mean_ablate(m, a, i)) for i, p in enumerate(projs)]
            value = metric(model(ids).logits)
            for handle in hs:
                handle.remove()
            return value

        prompts = [target, source]
        ref["circuit"] = np.array([np.mean([metric(model(p).logits) for p in prompts]),
                                   np.mean([ablated_run(p, keep) for p in prompts]),
                                   np.mean([ablated_run(p, set()) for p in prompts])], dtype=np.float32)
        if SPEC[family][3](model) is not None:
            target_stream = {i: torch.from_numpy(ref[f"hidden.{i}"]) for i in range(len(projs))}
            ref["dla"], ref["dla_mlp"] = direct_logit_attribution(model, family, cfg, target_heads, target_mlp,
                                                                  target_stream)
        ref["effects"] = effects
        # Zero-ablation: head (L, h)'s output set to zero.
        zero = np.zeros_like(effects)
        for layer, proj in enumerate(projs):
            for h in range(heads):
                def ablate(_m, args, h=h):
                    x = args[0].clone()
                    x[..., h * width:(h + 1) * width] = 0
                    return (x,)
                handle = proj.register_forward_pre_hook(ablate)
                zero[layer, h] = metric(model(target).logits) - clean
                handle.remove()
        ref["zero"] = zero
        # Path patching, direct effects: head (L, h) from the source, every
        # other head frozen at its target value.
        direct = np.zeros_like(effects)
        for layer in range(len(projs)):
            for h in range(heads):
                def freeze(_m, _args, layer_i, h=h, layer=layer):
                    x = target_heads[layer_i].clone()
                    if layer_i == layer:
                        x[..., h * width:(h + 1) * width] = source_heads[layer][..., h * width:(h + 1) * width]
                    return (x,)
                hs = [p.register_forward_pre_hook(lambda m, a, i=i: freeze(m, a, i)) for i, p in enumerate(projs)]
                direct[layer, h] = metric(model(target).logits) - clean
                for handle in hs:
                    handle.remove()
        ref["direct"] = direct
        ref["clean"] = np.array(clean, dtype=np.float32)
    ref.update(gradients(model, family, cfg))
    return ref


def gradients(model, family, cfg):
    """PyTorch autograd's gradients of the metric (logits[0, -1, a] -
    logits[0, -1, b] on the target) with respect to the tensors the
    references above hold: `grad.heads.L`, `grad.hidden.L`, `grad.mlp.L`,
    `grad.resid_in.0` and, where the family has them apart, `grad.q.L`,
    `grad.k.L`, `grad.v.L` (shaped as those tensors)."""
    kept = {}

    def retain(name, x):
        x = x[0] if isinstance(x, tuple) else x
        x.retain_grad()
        kept[name] = x

    handles = []
    for i, (l, p) in enumerate(zip(layers(model, family), out_proj(model, family))):
        handles.append(p.register_forward_pre_hook(lambda _m, a, i=i: retain(f"heads.{i}", a[0])))
        handles.append(l.register_forward_hook(lambda _m, _a, o, i=i: retain(f"hidden.{i}", o)))
        handles.append(SPEC[family][2](l).register_forward_hook(lambda _m, _a, o, i=i: retain(f"mlp.{i}", o)))
        if i == 0:
            handles.append(l.register_forward_pre_hook(
                lambda _m, a, k: retain("resid_in.0", a[0] if a else k["hidden_states"]), with_kwargs=True))
        for j, mod in enumerate(QKV[family](l) if family in QKV else []):
            handles.append(mod.register_forward_hook(lambda _m, _a, o, i=i, j=j: retain(f"qkv.{i}.{j}", o)))
    with torch.enable_grad():
        logits = model(torch.tensor(TARGET)).logits
        (logits[0, -1, A] - logits[0, -1, B]).backward()
    for h in handles:
        h.remove()
    model.zero_grad()
    out = {}
    heads = cfg.num_attention_heads
    for name, x in kept.items():
        g = x.grad.detach()
        if not name.startswith("qkv."):
            out[f"grad.{name}"] = g.numpy().copy()
            continue
        _, i, j = name.split(".")
        parts = {int(j): g}
        if family in ("gpt2", "phi3"):  # one fused projection: [q | k | v]
            d = cfg.hidden_size // heads
            kv = getattr(cfg, "num_key_value_heads", heads) * d
            parts = dict(enumerate(g.split([heads * d, kv, kv], dim=-1)))
        for k, part in parts.items():
            out[f"grad.{'qkv'[k]}.{i}"] = part.numpy().copy()
    return out


def direct_logit_attribution(model, family, cfg, heads_out, mlp_out, stream):
    """Each head's and each MLP's direct contribution to the logits of a and
    b at the last position: the head's output through the output
    projection (or the MLP's output), the final norm with its scale frozen
    at the residual stream's own, and the unembedding (no bias: a
    component's attribution is the change it makes). ([layers, heads, 2],
    [layers, 2])."""
    heads = cfg.num_attention_heads
    last = len(heads_out) - 1
    r = stream[last][0, -1]
    unembed = model.get_output_embeddings().weight  # [vocab, d]
    norm = SPEC[family][3](model)
    if isinstance(norm, torch.nn.LayerNorm):
        scale = torch.sqrt(((r - r.mean()) ** 2).mean() + norm.eps)
        read = lambda c: norm.weight * (c - c.mean()) / scale  # noqa: E731
    else:
        eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6))
        scale = torch.sqrt((r ** 2).mean() + eps)
        gain = norm.weight + 1 if family == "gemma" else norm.weight  # Gemma's RMSNorm scales by (1 + w)
        read = lambda c: gain * c / scale  # noqa: E731
    out = np.zeros((len(heads_out), heads, 2), dtype=np.float32)
    for layer, proj in enumerate(out_proj(model, family)):
        x = heads_out[layer][0, -1]
        width = x.shape[-1] // heads
        for h in range(heads):
            part = slice(h * width, (h + 1) * width)
            if family == "gpt2":  # Conv1D: weight [in, out]
                c = x[part] @ proj.weight[part, :]
            else:  # Linear: weight [out, in]
                c = proj.weight[:, part] @ x[part]
            v = read(c)
            out[layer, h] = [float(unembed[A] @ v), float(unembed[B] @ v)]
    mlps = np.zeros((len(heads_out), 2), dtype=np.float32)
    for layer in range(len(heads_out)):
        c = mlp_out[layer].reshape(-1, mlp_out[layer].shape[-1])[-1]
        v = read(c)
        mlps[layer] = [float(unembed[A] @ v), float(unembed[B] @ v)]
    return out, mlps


class LogitsOnly(torch.nn.Module):
    def __init__(self, model, decoder):
        super().__init__()
        self.model = model
        self.extra = {"use_cache": False} if decoder else {}

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **self.extra).logits


def export_torch(model, decoder, path, dynamo):
    wrapped = LogitsOnly(model, decoder).eval()
    ids = torch.tensor(TARGET)
    mask = torch.ones_like(ids)
    if dynamo:
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", min=2, max=30)
        torch.onnx.export(wrapped, (ids, mask), path, dynamo=True, input_names=["input_ids", "attention_mask"],
                          output_names=["logits"],
                          dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
                          external_data=False, optimize=True)
    else:
        # transformers builds masks with vmap, which TorchScript cannot trace;
        # Optimum's own vmap-free mask functions stand in for the export.
        from optimum.exporters.onnx.model_patcher import eager_mask_without_vmap, sdpa_mask_without_vmap
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask, sdpa_mask
        ALL_MASK_ATTENTION_FUNCTIONS.register("sdpa", sdpa_mask_without_vmap)
        ALL_MASK_ATTENTION_FUNCTIONS.register("eager", eager_mask_without_vmap)
        axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                "logits": {0: "batch", 1: "sequence"}}
        torch.onnx.export(wrapped, (ids, mask), path, dynamo=False, input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes=axes, opset_version=17)
        ALL_MASK_ATTENTION_FUNCTIONS.register("sdpa", sdpa_mask)
        ALL_MASK_ATTENTION_FUNCTIONS.register("eager", eager_mask)


def export_opset23(model, decoder, path):
    """The dynamo exporter at opset 23 with SDPA attention: attention
    becomes ONNX's own fused Attention op (and RMSNorm, rotary embeddings
    their ops), where PyTorch's exporter is heading."""
    model.config._attn_implementation = "sdpa"
    try:
        wrapped = LogitsOnly(model, decoder).eval()
        ids = torch.tensor(TARGET)
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", min=2, max=30)
        torch.onnx.export(wrapped, (ids, torch.ones_like(ids)), path, dynamo=True, opset_version=23,
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
                          external_data=False, optimize=True)
    finally:
        model.config._attn_implementation = "eager"
    import onnx
    if not any(n.op_type == "Attention" for n in onnx.load(path).graph.node):
        raise RuntimeError("the exporter wrote no Attention op")


def export_optimum(model, family, path, past):
    from optimum.exporters.onnx import main_export
    task = "fill-mask" if family == "bert" else ("text-generation-with-past" if past else "text-generation")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "model")
        model.save_pretrained(src)
        out = os.path.join(tmp, "onnx")
        main_export(src, out, task=task, no_post_process=False, do_validation=False, library_name="transformers")
        os.replace(os.path.join(out, "model.onnx"), path)


def fuse(source, path, cfg):
    """ONNX Runtime's transformer optimizer: attention becomes one
    com.microsoft.Attention node per layer (and embeddings, residual adds
    and norms fused ops too), as deployed BERTs often are."""
    from onnxruntime.transformers import optimizer
    m = optimizer.optimize_model(source, model_type="bert", num_heads=cfg.num_attention_heads,
                                 hidden_size=cfg.hidden_size, opt_level=1, use_gpu=False)
    if not any(n.op_type == "Attention" for n in m.model.graph.node):
        raise RuntimeError("the optimizer fused no attention")
    m.save_model_to_file(path)


def main():
    """`make_lm.py [--refs-only] [family ...]`: every family by default;
    `--refs-only` rewrites the references and leaves the exports as they
    are (the same seed gives the same weights)."""
    import onnx
    args = sys.argv[1:]
    refs_only = "--refs-only" in args
    chosen = [a for a in args if not a.startswith("--")]
    made_path = os.path.join(HERE, "made.json")
    made = {}
    if (chosen or refs_only) and os.path.exists(made_path):
        with open(made_path) as f:
            made = json.load(f)["fixtures"]
    for family, (cfg, cls, decoder) in configs().items():
        if chosen and family not in chosen:
            continue
        torch.manual_seed(0)
        model = cls(cfg).eval()
        ref = references(model, family, cfg)
        np.savez(os.path.join(HERE, f"{family}-ref.npz"), **ref)
        if refs_only:
            continue
        ways = [("torchscript", lambda p: export_torch(model, decoder, p, False)),
                ("dynamo", lambda p: export_torch(model, decoder, p, True)),
                ("optimum", lambda p: export_optimum(model, family, p, False))]
        if decoder:
            ways.append(("optimum-past", lambda p: export_optimum(model, family, p, True)))
            ways.append(("dynamo-opset23", lambda p: export_opset23(model, decoder, p)))
        else:
            ways.append(("ort-fused", lambda p: fuse(os.path.join(HERE, f"{family}-optimum.onnx"), p, cfg)))
        for way, export in ways:
            path = os.path.join(HERE, f"{family}-{way}.onnx")
            try:
                export(path)
                m = onnx.load(path)
                onnx.save(m, path)  # one file, weights inside
                made[f"{family}-{way}"] = {"ok": True, "opset": max(o.version for o in m.opset_import
                                                                      if o.domain in ("", "ai.onnx"))}
            except Exception as e:  # noqa: BLE001 - recorded, so a reader knows which way failed
                made[f"{family}-{way}"] = {"ok": False, "error": f"{type(e).__name__}: {str(e)[:300]}"}
                if os.path.exists(path):
                    os.remove(path)
            print(family, way, made[f"{family}-{way}"], file=sys.stderr)
        made[family] = {"heads": cfg.num_attention_heads, "layers": cfg.num_hidden_layers,
                        "kv_heads": getattr(cfg, "num_key_value_heads", cfg.num_attention_heads)}
    versions = {"torch": torch.__version__, "transformers": tf.__version__, "onnx": onnx.__version__}
    with open(made_path, "w") as f:
        json.dump({"versions": versions, "fixtures": made}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
