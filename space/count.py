"""Pure functions of a spec: exact parameter count, multiply-accumulates, peak activation memory,
receptive field."""

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


def op_macs(op: Op) -> int:
    return op.k * op.k * (op.cin // op.groups) * op.cout * op.size_out * op.size_out if op.kind == "conv" else 0


def count_macs(spec: ArchSpec) -> int:
    """Multiply-accumulates of one forward pass of one image (convs only, as is customary)."""
    return sum(op_macs(op) for op in plan(spec))


# Layers that write a new feature map. Batch norm folds into its conv (or, after a ReLU, scales
# the map in place), ReLU and dropout (an identity at inference) run in place, flatten is a view.
MATERIALIZED = ("conv", "maxpool", "gap")


def op_ram(op: Op) -> int:
    """Bytes alive while `op` runs in an int8 inference of one image: its input and output maps."""
    return op.cin * op.size_in * op.size_in + op.cout * op.size_out * op.size_out if op.kind in MATERIALIZED else 0


def count_ram(spec: ArchSpec) -> int:
    """Peak activation memory, in bytes, of an int8 inference of one image, counted as MCUNet
    counts it: while a layer runs, its input and output feature maps (one byte an element) are
    alive together, and nothing else is, because the network is a chain without residuals (the
    input of the next layer is this layer's output). A pool is counted like a conv (its input and
    its output); the global pool's output is one value a channel. Weights are not counted: they
    stay in flash. So the peak is the largest input + output of any conv or pool."""
    return max(op_ram(op) for op in plan(spec))


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


def smallest_designs(in_channels: int = 1, num_classes: int = 10, separable: bool = False) -> list[ArchSpec]:
    """The smallest networks the sampler can produce: two one-conv blocks of the narrowest width,
    batch norm without parameters, no bias, no transition, the bare head before or after the global
    pool; with `separable`, also with the second block depthwise-separable."""
    return [
        ArchSpec(blocks=(Block((WIDTH_MIN,), pool=True), Block((WIDTH_MIN,), separable=sep)),
                 in_channels=in_channels, num_classes=num_classes, bn="plain", head=head)
        for sep in ((False, True) if separable else (False,)) for head in ("conv_gap", "gap_conv")
    ]


def family_min_params(in_channels: int = 1, num_classes: int = 10, separable: bool = False) -> int:
    """Parameters of the smallest network the sampler can produce (`smallest_designs`)."""
    return min(count_params(s) for s in smallest_designs(in_channels, num_classes, separable))


def family_min_macs(in_channels: int = 1, num_classes: int = 10, separable: bool = False) -> int:
    """MACs of the cheapest network the sampler can produce (the head after the global pool)."""
    return min(count_macs(s) for s in smallest_designs(in_channels, num_classes, separable))


def family_min_ram(in_channels: int = 1, num_classes: int = 10, separable: bool = False) -> int:
    """Peak int8 activation bytes of the leanest network the sampler can produce: the first conv,
    four channels wide, on the 28x28 image."""
    return min(count_ram(s) for s in smallest_designs(in_channels, num_classes, separable))
