"""PyTorch autograd's gradients on Assay's two built-in models, for
`ok_grad_torch_models.assay`.

Each model's ONNX graph (as Assay provisions it into its cache) is
converted to PyTorch by onnx2torch, so autograd runs on the same weights
and the same operations in PyTorch's own kernels; a torch.fx interpreter
keeps the gradient of every tensor named below. The references are
computed in float64 and stored as float32: EfficientNet's ReLU6 has
kinks, and a unit whose input lies within float32 rounding of one is on
either side of it depending on the order of a framework's sums, which
changes the gradient behind it (on the second image below, PyTorch's own
float32 pixel gradient differs from its float64 one by 8.3e-3 of the
largest element; Assay's by 6e-7). Written next to this script:

- `smollm2-ref.npz`: SmolLM2-135M on an IOI prompt (`ids`), the metric
  logits[0, -1, 5099] - logits[0, -1, 2322] (" Mary" - " John") as
  `value`, and `grad.<key>` for the residual streams after layers 0, 10
  and 29, layer 20's heads (the output projection's input) and MLP
  output, and layer 5's queries.
- `efficientnet-ref.npz`: EfficientNet-Lite0 on a smooth pattern in its
  input range (the formula below), the metric logits[0, 281] ("tabby")
  as `value`, and `grad.<key>` for the pixels and three blocks' outputs.
- `resize-linear.onnx`: a two-node graph whose linear Resize has no
  gradient rule (see no_rule below).

Rebuild (the fixtures' virtual environment from ../lm/make_lm.py, plus
`pip install onnx2torch==1.5.15 torchvision pillow`):

    /tmp/lmvenv/bin/python tests/cases/data/grad/make_refs.py \\
        ~/.cache/assay/models/smollm2-135m-v7-mask ~/.cache/assay/models/efficientnet-lite0
"""

import os
import sys
import warnings

import numpy as np
import onnx
import torch
from onnx2torch import convert

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))


def autograd(path, feeds, metric, tensors):
    """The metric's value and its gradients with respect to `tensors`
    ({key: ONNX tensor name}), each the output of one node."""
    proto = onnx.load(path)
    producer = {o: n.name for n in proto.graph.node for o in n.output}
    # onnx2torch names a node's module after the node: "/a.b/c" -> "a/b/c".
    want = {producer[t].lstrip("/").replace(".", "/"): k for k, t in tensors.items()}
    net = convert(proto).eval().double()
    kept = {}

    class Keep(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if n.op == "call_module" and n.target in want:
                # (onnx2torch keeps weights as buffers: the first tensor
                # kept starts the graph autograd records.)
                if not out.requires_grad:
                    out = out.detach().requires_grad_(True)
                out.retain_grad()
                kept[want[n.target]] = out
            return out

    names = [i.name for i in proto.graph.input]
    with torch.enable_grad():
        outs = Keep(net).run(*[feeds[name].double() if feeds[name].is_floating_point() else feeds[name]
                               for name in names])
        value = metric(outs[0] if isinstance(outs, (tuple, list)) else outs)
        value.backward()
    missing = set(tensors) - set(kept)
    if missing:
        raise RuntimeError(f"not found in the converted graph: {missing}")
    return float(value), {f"grad.{k}": v.grad.detach().numpy().astype(np.float32) for k, v in kept.items()}


def smollm(model_dir):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    text = "When Mary and John went to the store, John gave a drink to"
    ids = torch.tensor([tok.encode(text, add_special_tokens=False).ids], dtype=torch.int64)
    n, t = ids.shape
    proto = onnx.load(f"{model_dir}/model.onnx", load_external_data=False)
    feeds = {"input_ids": ids, "attention_mask": torch.ones(n, t, dtype=torch.int64),
             "position_ids": torch.arange(t, dtype=torch.int64).unsqueeze(0)}
    for i in proto.graph.input:
        if i.name.startswith("past_key_values"):
            feeds[i.name] = torch.zeros(n, 3, 0, 64, dtype=torch.float64)
    tensors = {"residual.0": "/model/layers.0/residual_mlp_output_0",
               "residual.10": "/model/layers.10/residual_mlp_output_0",
               "residual.29": "/model/layers.29/residual_mlp_output_0",
               "heads.20": "/model/layers.20/self_attn/heads_output_0",
               "mlp.20": "/model/layers.20/mlp/down_proj/MatMul_output_0",
               "q.5": "/model/layers.5/self_attn/q_proj/MatMul_output_0"}
    value, grads = autograd(f"{model_dir}/model.onnx", feeds, lambda y: y[0, -1, 5099] - y[0, -1, 2322], tensors)
    np.savez_compressed(os.path.join(HERE, "smollm2-ref.npz"), ids=ids.numpy(), value=np.array(value, dtype=np.float32), **grads)


def efficientnet(model_dir):
    # A smooth pattern in the input's range that the test script builds
    # the same way: 0.5 sin(0.07 i + 0.05 j c) cos(0.03 j - 0.02 i c), c = 1..3.
    i = np.arange(224, dtype=np.float32).reshape(1, 1, 224, 1)
    j = np.arange(224, dtype=np.float32).reshape(1, 1, 1, 224)
    c = np.arange(1, 4, dtype=np.float32).reshape(1, 3, 1, 1)
    pixels = (0.5 * np.sin(i * 0.07 + j * c * 0.05) * np.cos(j * 0.03 - i * c * 0.02)).astype(np.float32)
    tensors = {"pixels": None, "block4": "/_blocks.4/Add_output_0", "block7": "/_blocks.7/Add_output_0",
               "block15": "/_blocks.15/_project_conv/Conv_output_0"}
    x = torch.from_numpy(pixels).double().requires_grad_(True)
    inner = {k: v for k, v in tensors.items() if v is not None}
    value, grads = autograd(f"{model_dir}/model.onnx", {"input": x}, lambda y: y[0, 281], inner)
    grads["grad.pixels"] = x.grad.detach().numpy().astype(np.float32)
    np.savez_compressed(os.path.join(HERE, "efficientnet-ref.npz"), value=np.array(value, dtype=np.float32), **grads)


def no_rule():
    """`resize-linear.onnx`: x [N, 1, 1, 4] scaled into `h`, then resized
    linearly to [N, 1, 1, 8] (`y`): an operator mode without a gradient
    rule, for the refusal and SPSA-fallback tests."""
    from onnx import TensorProto, helper
    w = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, -2.0, 0.5, 3.0])
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, 1.0, 2.0])
    nodes = [helper.make_node("Mul", ["x", "w"], ["h"], name="scale"),
             helper.make_node("Resize", ["h", "", "scales"], ["y"], name="upsample", mode="linear")]
    graph = helper.make_graph(nodes, "resize-linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 1, 8])], [w, scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(HERE, "resize-linear.onnx"))


if __name__ == "__main__":
    no_rule()
    smollm(os.path.expanduser(sys.argv[1]))
    efficientnet(os.path.expanduser(sys.argv[2]))
