"""Text descriptions of a design: torchsummary's table, the receptive-field table, params, MACs,
peak int8 activation memory."""

from __future__ import annotations

import contextlib
import io

from space.budget import kb
from space.count import count_macs, count_params, count_ram, receptive_field
from space.model import build
from space.recipe import Recipe
from space.spec import ArchSpec


def summary_table(spec: ArchSpec) -> str:
    from torchsummary import summary

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        summary(build(spec), (spec.in_channels, spec.in_size, spec.in_size), device="cpu")
    return buf.getvalue().rstrip()


def rf_table(spec: ArchSpec) -> str:
    lines = [f"{'layer':<11} {'input':>10} {'output':>10} {'RF':>4} {'jump':>4}", "-" * 43]
    for r in receptive_field(spec):
        lines.append(f"{r.layer:<11} {f'{r.size_in}x{r.size_in}x{r.channels_in}':>10} "
                     f"{f'{r.size_out}x{r.size_out}x{r.channels_out}':>10} {r.rf:>4} {r.jump:>4}")
    return "\n".join(lines)


def describe_design(spec: ArchSpec, recipe: Recipe | None, label: str) -> str:
    parts = [f"design {label} (digest {spec.digest()})", summary_table(spec), "", "receptive field", rf_table(spec), "",
             f"params: {count_params(spec):,}", f"MACs:   {count_macs(spec):,} per image",
             f"RAM:    {count_ram(spec):,} bytes ({kb(count_ram(spec))}) peak activations of an int8 inference "
             "(largest input + output of any conv or pool)"]
    if recipe is not None:
        parts.append("recipe: " + ", ".join(f"{k}={v}" for k, v in recipe.to_dict().items()))
    return "\n".join(parts)
