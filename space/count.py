"""Pure functions of a spec: exact parameter count, multiply-accumulates, receptive field."""

from __future__ import annotations

from dataclasses import dataclass

from space.plan import Op, plan
from space.spec import ArchSpec, Block

WIDTH_MIN = 4  # narrowest conv the sampler produces


def op_params(op: Op) -> int:
    if op.kind == "conv":
        return op.k * op.k * (op.cin // op.groups) * op.cout + (op.cout if op.bias else 0)
    if op.kind == "bn" and op.affine:
        return 2 * op.cout
    return 0


def count_params(spec: ArchSpec) -> int:
    """Exactly what `sum(p.numel() for p in build(spec).parameters())` gives, without building."""
    return sum(op_params(op) for op in plan(spec))


def count_macs(spec: ArchSpec) -> int:
    """Multiply-accumulates of one forward pass of one image (convs only, as is customary)."""
    return sum(
        op.k * op.k * (op.cin // op.groups) * op.cout * op.size_out * op.size_out
        for op in plan(spec)
        if op.kind == "conv"
    )


@dataclass(frozen=True)
class RFRow:
    layer: str  # e.g. "conv3x3", "conv1x1", "maxpool2x2", "gap"
    size_in: int
    size_out: int
    channels_in: int
    channels_out: int
    rf: int  # receptive field (pixels of the input) after this layer
    jump: int  # distance in input pixels between adjacent outputs


def receptive_field(spec: ArchSpec) -> list[RFRow]:
    """Per spatial layer: rf_out = rf_in + (k - 1) * jump_in; jump_out = jump_in * stride.

    The global average pool is treated as a kernel spanning the whole feature map.
    """
    rows: list[RFRow] = []
    rf, jump = 1, 1
    for op in plan(spec):
        if op.kind == "conv":
            rf += (op.k - 1) * jump
            name = f"{'dw' if op.groups > 1 else ''}conv{op.k}x{op.k}"
        elif op.kind == "maxpool":
            rf += (op.k - 1) * jump
            jump *= op.k
            name = "maxpool2x2"
        elif op.kind == "gap":
            rf += (op.size_in - 1) * jump
            name = "gap"
        else:
            continue
        rows.append(RFRow(name, op.size_in, op.size_out, op.cin, op.cout, rf, jump))
    return rows


def final_receptive_field(spec: ArchSpec) -> int:
    """Receptive field of the feature map that enters the global average pool."""
    rows = receptive_field(spec)
    return rows[[r.layer for r in rows].index("gap") - 1].rf


def family_min_params(in_channels: int = 1, num_classes: int = 10, separable: bool = False) -> int:
    """Parameters of the smallest network the sampler can produce: two one-conv blocks of the
    narrowest width, batch norm without parameters, no bias, no transition, the bare head; with
    `separable`, the second block depthwise-separable."""
    def smallest(sep: bool) -> int:
        return count_params(ArchSpec(
            blocks=(Block((WIDTH_MIN,), pool=True), Block((WIDTH_MIN,), separable=sep)),
            in_channels=in_channels, num_classes=num_classes, bn="plain",
        ))

    return min(smallest(False), smallest(True)) if separable else smallest(False)
