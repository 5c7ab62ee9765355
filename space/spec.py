"""The architecture spec: a frozen, JSON-serializable description of one CNN of the family.

The family is the one the hand designs in ../shared/seeds use: blocks of 3x3 convs, each block
optionally closed by a 1x1 "transition" conv and a 2x2 max-pool, then a head that maps to the
classes with 1x1 convs either before a global average pool (seeds 000, 002) or after it (004).
A block's 3x3 convs may be depthwise-separable, as in the public designs for the smallest budgets.

    spec = ArchSpec(blocks=(Block((8, 14), transition=10, pool=True), Block((14, 16, 20))),
                    head="gap_conv", head_hidden=16)
    spec.to_json()  ->  str;  ArchSpec.from_json(s) == spec;  spec.digest() -> "3f2a..."
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from space.errors import InputError

BN_MODES = ("none", "affine", "plain")  # plain: normalize only, no learnable scale/shift
# conv_gap / gap_conv: 1x1 convs to the classes before / after the global average pool;
# gap: no 1x1 head at all, the last 3x3 conv is num_classes wide and GAP reads its maps as logits
HEADS = ("conv_gap", "gap_conv", "gap")
# after every 3x3 conv unit, only after each max-pool, or once on the pooled features (head
# gap_conv: between the global pool and its 1x1 layers; with the other heads GAP gives the logits)
DROPOUT_SITES = ("conv", "pool", "gap")


class SpecError(InputError):
    """A spec that cannot describe a valid network; the message names the field."""


@dataclass(frozen=True)
class Block:
    widths: tuple[int, ...]  # output channels of the block's 3x3 convs, in order
    padding: int = 0  # padding of every 3x3 conv in the block: 0 (shrinks by 2) or 1 (same size)
    transition: int = 0  # width of a 1x1 conv closing the block; 0 = none
    pool: bool = False  # 2x2 max-pool closing the block (after the transition)
    # 3x3 convs as depthwise 3x3 + pointwise 1x1 (about 9x fewer params per conv at equal widths);
    # never the network's first conv, whose depthwise filter would be a single 3x3 filter
    separable: bool = False


@dataclass(frozen=True)
class ArchSpec:
    blocks: tuple[Block, ...]  # the feature extractor, in order
    in_channels: int = 1  # input image channels
    in_size: int = 28  # input height = width
    num_classes: int = 10  # outputs (logits)
    bn: str = "affine"  # batch norm after each 3x3 conv: none | affine | plain (no parameters)
    bn_after_relu: bool = False  # conv-relu-bn (seed 004) instead of conv-bn-relu (seed 000)
    conv_bias: bool = False  # bias on every conv (seed 002 uses biases)
    dropout: float = 0.0  # dropout probability, 0 = none
    dropout_at: str = "conv"  # where dropout sits: after each 3x3 conv unit, each pool, or the global pool
    transition_act: bool = False  # give 1x1 transitions the same bn/relu as 3x3 convs
    head: str = "conv_gap"  # conv_gap: 1x1 convs then GAP; gap_conv: GAP then 1x1 convs; gap: GAP only
    head_hidden: int = 0  # width of an optional hidden 1x1 layer in the head; 0 = none
    head_relu: bool = False  # relu between the hidden head layer and the output layer

    def __post_init__(self) -> None:
        validate(self)

    # --- serialization -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["blocks"] = [dict(b, widths=list(b["widths"])) for b in d["blocks"]]
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchSpec:
        if not isinstance(d, dict):
            raise SpecError("spec: expected a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SpecError(f"spec: unknown field(s) {', '.join(unknown)}")
        if "blocks" not in d or not isinstance(d["blocks"], list):
            raise SpecError("blocks: required, a list of blocks")
        blocks = []
        for i, b in enumerate(d["blocks"]):
            if not isinstance(b, dict) or "widths" not in b:
                raise SpecError(f"blocks[{i}]: expected an object with 'widths'")
            extra = sorted(set(b) - {f.name for f in fields(Block)})
            if extra:
                raise SpecError(f"blocks[{i}]: unknown field(s) {', '.join(extra)}")
            if not isinstance(b["widths"], list):
                raise SpecError(f"blocks[{i}].widths: expected a list of integers")
            blocks.append(Block(**dict(b, widths=tuple(b["widths"]))))
        return cls(**dict(d, blocks=tuple(blocks)))

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"spec: not valid JSON ({e.msg} at line {e.lineno})") from None
        return cls.from_dict(d)

    def digest(self) -> str:
        """A stable short hash of the architecture (same spec, same digest, across runs)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]


def _check_int(name: str, value: Any, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise SpecError(f"{name}: expected an integer >= {low}, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")


def validate(spec: ArchSpec) -> None:
    """Raise SpecError naming the first bad field, including geometry that shrinks below 1x1."""
    _check_int("in_channels", spec.in_channels, 1)
    _check_int("in_size", spec.in_size, 1)
    _check_int("num_classes", spec.num_classes, 2)
    _check_choice("bn", spec.bn, BN_MODES)
    _check_choice("head", spec.head, HEADS)
    _check_choice("dropout_at", spec.dropout_at, DROPOUT_SITES)
    _check_int("head_hidden", spec.head_hidden, 0)
    for flag in ("bn_after_relu", "conv_bias", "transition_act", "head_relu"):
        if not isinstance(getattr(spec, flag), bool):
            raise SpecError(f"{flag}: expected true or false")
    if not isinstance(spec.dropout, (int, float)) or not 0.0 <= spec.dropout < 1.0:
        raise SpecError(f"dropout: expected a probability in [0, 1), got {spec.dropout!r}")
    if not isinstance(spec.blocks, tuple) or not spec.blocks:
        raise SpecError("blocks: at least one block is required")
    size = spec.in_size
    for i, b in enumerate(spec.blocks):
        if not isinstance(b, Block):
            raise SpecError(f"blocks[{i}]: expected a Block")
        if not isinstance(b.widths, tuple) or not b.widths:
            raise SpecError(f"blocks[{i}].widths: at least one 3x3 conv is required")
        for j, w in enumerate(b.widths):
            _check_int(f"blocks[{i}].widths[{j}]", w, 1)
        if b.padding not in (0, 1) or isinstance(b.padding, bool):
            raise SpecError(f"blocks[{i}].padding: expected 0 or 1, got {b.padding!r}")
        _check_int(f"blocks[{i}].transition", b.transition, 0)
        for flag in ("pool", "separable"):
            if not isinstance(getattr(b, flag), bool):
                raise SpecError(f"blocks[{i}].{flag}: expected true or false")
        for j in range(len(b.widths)):
            size = size - 2 + 2 * b.padding
            if size < 1:
                raise SpecError(
                    f"blocks[{i}].widths[{j}]: the feature map shrinks below 1x1 "
                    f"(input {spec.in_size}x{spec.in_size}); use padding 1 or fewer convs"
                )
        if b.pool:
            if size < 2:
                raise SpecError(f"blocks[{i}].pool: the feature map is {size}x{size}, too small to pool")
            size //= 2
    if spec.dropout_at == "gap" and spec.head != "gap_conv":
        raise SpecError(f"dropout_at: 'gap' drops the pooled features before the 1x1 head, so it needs head "
                        f"'gap_conv', not {spec.head!r}")
    if spec.head == "gap":
        last = spec.blocks[-1]
        if last.widths[-1] != spec.num_classes or last.transition or last.pool or spec.head_hidden:
            raise SpecError(
                f"head: 'gap' needs the last 3x3 conv {spec.num_classes} wide (num_classes), with no "
                "transition, pool or head_hidden after it"
            )
