"""An ONNX graph as a torch module: `OnnxModule` reads a model folder's ONNX file and runs its nodes as
torch ops (`_run_op`: the ops a pix2pix generator exports to), so the torch backend in `torch_backend.py` plays
every model a show can play without its training code. torch and onnx are imported when a graph is
loaded, not when this module is."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from installation.core.errors import UserError


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pads2d(pads: list[int]) -> tuple[tuple[int, int], list[int] | None]:
    """ONNX pads [top, left, bottom, right] -> symmetric conv padding, or an explicit F.pad list."""
    if not pads:
        return (0, 0), None
    t, left, b, r = pads
    if t == b and left == r:
        return (t, left), None
    return (0, 0), [left, r, t, b]


class OnnxModule:
    """Builds a torch.nn.Module that evaluates an ONNX graph op by op with torch functions.

    Only the ops image-to-image generators export to are known (convolutions, norms, activations,
    concatenation, padding, arithmetic); anything else is a UserError naming the op, and the show
    keeps the ONNX Runtime backend.
    """

    OPS = ("Conv", "ConvTranspose", "BatchNormalization", "InstanceNormalization", "Relu", "LeakyRelu",
           "Tanh", "Sigmoid", "Identity", "Dropout", "Concat", "Add", "Sub", "Mul", "Div", "Pad", "Constant")

    @classmethod
    def load(cls, onnx_path: Path) -> Any:
        import onnx
        import torch
        from onnx import numpy_helper
        from torch import nn
        from torch.nn import functional as F

        model = onnx.load(str(onnx_path))
        g = model.graph
        unknown = sorted({n.op_type for n in g.node} - set(cls.OPS))
        if unknown:
            raise UserError(f"the torch backend can't run ops {', '.join(unknown)}", file=onnx_path,
                            expected="backend onnx for this model")
        consts = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in g.initializer}
        nodes = []
        for n in g.node:
            a = _attrs(n)
            if n.op_type == "Constant":
                consts[n.output[0]] = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
                continue
            nodes.append((n.op_type, list(n.input), list(n.output), a))
        init_names = set(consts)
        inputs = [i.name for i in g.input if i.name not in init_names]
        if len(inputs) != 1 or len(g.output) != 1:
            raise UserError("the torch backend runs graphs of one input and one output", file=onnx_path)

        class Graph(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.names: dict[str, str] = {}
                for i, (name, t) in enumerate(consts.items()):
                    key = f"c{i}"
                    self.names[name] = key
                    # float weights follow .half()/.to(); integer tensors (pads, shapes) stay as they are
                    self.register_buffer(key, t if t.is_floating_point() else t.long(), persistent=False)
                self.input, self.output = inputs[0], g.output[0].name

            def forward(self, x: Any) -> Any:
                env: dict[str, Any] = {self.input: x}

                def get(name: str) -> Any:
                    if not name:
                        return None
                    return env[name] if name in env else getattr(self, self.names[name])

                for op, ins, outs, a in nodes:
                    args = [get(n) for n in ins]
                    env[outs[0]] = _run_op(op, args, a, F, torch)
                return env[self.output]

        return Graph()


def _run_op(op: str, args: list[Any], a: Mapping[str, Any], F: Any, torch: Any) -> Any:
    x = args[0]
    if op == "Conv":
        padding, explicit = _pads2d(list(a.get("pads", [])))
        if explicit:
            x = F.pad(x, explicit)
        return F.conv2d(x, args[1], args[2] if len(args) > 2 else None, tuple(a.get("strides", (1, 1))),
                        padding, tuple(a.get("dilations", (1, 1))), a.get("group", 1))
    if op == "ConvTranspose":
        padding, explicit = _pads2d(list(a.get("pads", [])))
        if explicit:
            raise ValueError("asymmetric ConvTranspose pads")
        return F.conv_transpose2d(x, args[1], args[2] if len(args) > 2 else None,
                                  tuple(a.get("strides", (1, 1))), padding, tuple(a.get("output_padding", (0, 0))),
                                  a.get("group", 1), tuple(a.get("dilations", (1, 1))))
    if op == "BatchNormalization":
        return F.batch_norm(x, args[3], args[4], args[1], args[2], False, 0.0, a.get("epsilon", 1e-5))
    if op == "InstanceNormalization":
        return F.instance_norm(x, weight=args[1], bias=args[2], eps=a.get("epsilon", 1e-5))
    if op == "Relu":
        return F.relu(x)
    if op == "LeakyRelu":
        return F.leaky_relu(x, a.get("alpha", 0.01))
    if op == "Tanh":
        return torch.tanh(x)
    if op == "Sigmoid":
        return torch.sigmoid(x)
    if op in ("Identity", "Dropout"):  # inference: dropout is the identity
        return x
    if op == "Concat":
        return torch.cat(args, a["axis"])
    if op in ("Add", "Sub", "Mul", "Div"):
        return {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}[op](x, args[1])
    if op == "Pad":
        pads = [int(v) for v in (args[1].tolist() if len(args) > 1 and args[1] is not None else a["pads"])]
        n = len(pads) // 2
        torch_pads: list[int] = []
        for d in range(n - 1, 1, -1):  # torch lists the last axis first; batch and channel stay unpadded
            torch_pads += [pads[d], pads[d + n]]
        mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[
            a.get("mode", b"constant").decode() if isinstance(a.get("mode"), bytes) else a.get("mode", "constant")]
        return F.pad(x, torch_pads, mode=mode)
    raise ValueError(f"op {op}")
