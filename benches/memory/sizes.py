"""Random-weight Llama-style models of growing size for benches/memory/
sizes.sh: `sizes.py export DIR NAME` writes DIR/NAME/model.onnx (PyTorch's
TorchScript exporter, weights in one external file) and the PyTorch
checkpoint beside it; `sizes.py peer DIR NAME` runs the peer's side of the
benchmark: the same head sweep as sweep.assay in PyTorch eager with forward
pre-hooks on every layer's output projection (batches of 8 rows, each row
one head patched from the source prompt at every position), and prints
the effects' checksum."""
import os
import sys
import warnings

warnings.filterwarnings("ignore")
import torch
import transformers as tf

# (hidden, layers, heads, kv heads, intermediate): about 0.1, 0.25, 0.5 and
# 1 billion parameters with a 16,384-token vocabulary.
SIZES = {
    "100m": (768, 10, 12, 4, 2048),
    "250m": (1024, 16, 16, 4, 2816),
    "500m": (1536, 16, 16, 4, 4096),
    "1b": (2048, 18, 16, 4, 5632),
}
VOCAB = 16384
TARGET = [[5, 17, 9, 33, 2, 41, 12, 7, 100, 250, 3, 8, 19, 60, 71, 12]]
SOURCE = [[5, 17, 30, 33, 2, 41, 12, 7, 100, 250, 3, 8, 19, 60, 71, 12]]
LAYERS_SWEPT = 2  # the first two layers' heads


def config(name):
    d, n, h, kv, ff = SIZES[name]
    return tf.LlamaConfig(vocab_size=VOCAB, hidden_size=d, intermediate_size=ff, num_hidden_layers=n,
                          num_attention_heads=h, num_key_value_heads=kv, max_position_embeddings=64,
                          tie_word_embeddings=False, attn_implementation="eager")


class LogitsOnly(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


def export(root, name):
    torch.manual_seed(0)
    model = tf.LlamaForCausalLM(config(name)).eval()
    out = os.path.join(root, name)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(os.path.join(out, "torch"))
    ids = torch.tensor(TARGET)
    from optimum.exporters.onnx.model_patcher import eager_mask_without_vmap, sdpa_mask_without_vmap
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    ALL_MASK_ATTENTION_FUNCTIONS.register("sdpa", sdpa_mask_without_vmap)
    ALL_MASK_ATTENTION_FUNCTIONS.register("eager", eager_mask_without_vmap)
    path = os.path.join(out, "model.onnx")
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch", 1: "sequence"}}
    torch.onnx.export(LogitsOnly(model), (ids, torch.ones_like(ids)), path, dynamo=False,
                      input_names=["input_ids", "attention_mask"], output_names=["logits"], dynamic_axes=axes,
                      opset_version=17)
    import onnx
    m = onnx.load(path)
    onnx.save(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin")
    params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {params / 1e6:.0f}M parameters")


def peer(root, name):
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    model = tf.LlamaForCausalLM.from_pretrained(os.path.join(root, name, "torch")).eval()
    cfg = model.config
    heads, width = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    projs = [l.self_attn.o_proj for l in model.model.layers[:LAYERS_SWEPT]]
    source = {}
    with torch.no_grad():
        hs = [p.register_forward_pre_hook(lambda m, a, i=i: source.__setitem__(i, a[0].clone())) for i, p in enumerate(projs)]
        model(torch.tensor(SOURCE))
        for h in hs:
            h.remove()
        comps = [(l, h) for l in range(LAYERS_SWEPT) for h in range(heads)]
        total = 0.0
        for start in range(0, len(comps), 8):
            rows = comps[start:start + 8]

            def patch(m, a, layer):
                x = a[0].clone()
                for r, (l, h) in enumerate(rows):
                    if l == layer:
                        x[r, :, h * width:(h + 1) * width] = source[layer][0, :, h * width:(h + 1) * width]
                return (x,)
            hs = [p.register_forward_pre_hook(lambda m, a, i=i: patch(m, a, i)) for i, p in enumerate(projs)]
            logits = model(torch.tensor(TARGET).repeat(len(rows), 1)).logits
            for h in hs:
                h.remove()
            total += float((logits[:, -1, 7] - logits[:, -1, 11]).sum())
    print(f"checksum {total:.4f}")


if __name__ == "__main__":
    {"export": export, "peer": peer}[sys.argv[1]](sys.argv[2], sys.argv[3])
