"""Build an nn.Module from a spec. Imports nothing from training."""

from __future__ import annotations

from torch import nn

from space.plan import Op, plan
from space.spec import ArchSpec


def _module(op: Op) -> nn.Module:
    if op.kind == "conv":
        return nn.Conv2d(op.cin, op.cout, op.k, padding=op.pad, bias=op.bias, groups=op.groups)
    if op.kind == "bn":
        return nn.BatchNorm2d(op.cout, affine=op.affine)
    if op.kind == "relu":
        return nn.ReLU(inplace=True)
    if op.kind == "dropout":
        return nn.Dropout(op.p)
    if op.kind == "maxpool":
        return nn.MaxPool2d(2, 2)
    if op.kind == "gap":
        return nn.AdaptiveAvgPool2d(1)
    if op.kind == "flatten":
        return nn.Flatten()
    raise ValueError(f"unknown op kind {op.kind!r}")


class Net(nn.Sequential):
    """The layers of `plan(spec)` in order; outputs logits of shape [batch, num_classes]."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__(*[_module(op) for op in plan(spec)])
        self.spec = spec


def build(spec: ArchSpec) -> Net:
    return Net(spec)
