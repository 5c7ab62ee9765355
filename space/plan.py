"""Expand an ArchSpec into the flat list of layers it stands for.

Counting, MACs, receptive field and `build` all read this one list, so they cannot disagree
about what the network is; the tests then check the counts against what torch itself counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: the plan reads a spec's fields, it builds none
    from space.spec import ArchSpec


@dataclass(frozen=True)
class Op:
    kind: str  # conv | bn | relu | dropout | maxpool | gap | flatten
    cin: int  # input channels
    cout: int  # output channels
    size_in: int  # input height = width
    size_out: int  # output height = width
    k: int = 1  # kernel size (conv, maxpool)
    groups: int = 1  # conv groups: cin for a depthwise conv
    pad: int = 0  # padding (conv)
    bias: bool = False  # conv bias
    affine: bool = False  # learnable bn scale/shift
    p: float = 0.0  # dropout probability


def plan(spec: ArchSpec) -> list[Op]:
    ops: list[Op] = []
    c, s = spec.in_channels, spec.in_size

    def conv(cout: int, k: int, pad: int = 0, groups: int = 1) -> None:
        nonlocal c, s
        out = s + 2 * pad - k + 1
        # a depthwise conv has no bias: the pointwise conv after it adds one where the spec asks
        ops.append(Op("conv", c, cout, s, out, k=k, pad=pad, bias=spec.conv_bias and groups == 1, groups=groups))
        c, s = cout, out

    def conv3x3(cout: int, pad: int, separable: bool) -> None:
        if separable and ops:  # the network's first conv is always a full one
            conv(c, 3, pad, groups=c)
            conv(cout, 1)
        else:
            conv(cout, 3, pad)

    def same(kind: str, **kw: object) -> None:
        ops.append(Op(kind, c, c, s, s, **kw))  # type: ignore[arg-type]

    def norm_act() -> None:
        bn = spec.bn != "none"
        if bn and not spec.bn_after_relu:
            same("bn", affine=spec.bn == "affine")
        same("relu")
        if bn and spec.bn_after_relu:
            same("bn", affine=spec.bn == "affine")

    n_convs = sum(len(b.widths) for b in spec.blocks)
    for block in spec.blocks:
        for width in block.widths:
            conv3x3(width, block.padding, block.separable)
            norm_act()
            n_convs -= 1
            # with head "gap" the last conv's maps are the logits: no dropout on them
            if spec.dropout > 0 and spec.dropout_at == "conv" and (n_convs or spec.head != "gap"):
                same("dropout", p=spec.dropout)
        if block.transition:
            conv(block.transition, 1)
            if spec.transition_act:
                norm_act()
        if block.pool:
            ops.append(Op("maxpool", c, c, s, s // 2, k=2))
            s //= 2
            if spec.dropout > 0 and spec.dropout_at == "pool":
                same("dropout", p=spec.dropout)

    def head_convs() -> None:
        if spec.head_hidden:
            conv(spec.head_hidden, 1)
            if spec.head_relu:
                same("relu")
        conv(spec.num_classes, 1)

    def gap() -> None:
        nonlocal s
        ops.append(Op("gap", c, c, s, 1))
        s = 1

    if spec.head == "conv_gap":
        head_convs()
        gap()
    elif spec.head == "gap":
        gap()
    else:
        gap()
        if spec.dropout > 0 and spec.dropout_at == "gap":
            same("dropout", p=spec.dropout)
        head_convs()
    same("flatten")
    return ops
