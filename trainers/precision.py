"""Which arithmetic a training run uses. Torch-free, so the CLI can check `--precision` at once."""

from __future__ import annotations

from pathlib import Path

from space.errors import InputError

PRECISIONS = ("auto", "fp32", "bf16")


def cpu_has_bf16() -> bool:
    """Native bf16 arithmetic (AMX or AVX-512-BF16): where CPU autocast to bf16 can pay off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


# On a CPU with native bf16, autocast trained seed-004 1.22x faster to the same 15-epoch test
# accuracy as fp32 (RESULTS.md, "bf16 on CPU"); more candidate-epochs per hour is what a search needs.
AUTO_BF16_ON_CPU = True

# On an H100, seed-004's epoch took 1.64 s in fp32 and 1.93 s under bf16 autocast (RESULTS.md,
# "On a GPU"): networks this small are bound by kernel launches, and autocast adds cast kernels.
AUTO_BF16_ON_CUDA = False


def resolve_precision(precision: str, device_type: str) -> str:
    """fp32 or bf16. auto: fp32 on CUDA (see AUTO_BF16_ON_CUDA); on CPU bf16 where the CPU has it."""
    if precision not in PRECISIONS:
        raise InputError(f"--precision {precision!r}: choose from {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device_type == "cuda":
        return "bf16" if AUTO_BF16_ON_CUDA else "fp32"
    if device_type == "cpu" and AUTO_BF16_ON_CPU and cpu_has_bf16():
        return "bf16"
    return "fp32"
