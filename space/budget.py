"""The hard budget a candidate must fit: parameters, and optionally MACs and peak memory.

Every cap is counted exactly from `plan(spec)` before anything is built, and every count grows
with the widths, so the sampler can fit a drawn shape to all caps at once by one common scale.

    Budget(8000, macs=1_070_000).over(spec)  ->  ["1,733,616 MACs > 1,070,000"]  (or [] if it fits)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from space.count import op_macs, op_params, op_ram
from space.plan import plan
from space.spec import ArchSpec

KB = 1024  # bytes: microcontroller memory is sized in KiB ("256 KB of SRAM")


def kb(n_bytes: int) -> str:
    return f"{n_bytes / KB:,.1f} KB"


def mega(n: int | None) -> str:
    """MACs in millions for a table column ("1.07M"); "-" when unknown."""
    return "-" if n is None else f"{n / 1e6:.2f}M"


@dataclass(frozen=True)
class Budget:
    params: int  # hard cap on parameters
    macs: int | None = None  # hard cap on multiply-accumulates per image; None: no cap
    ram: int | None = None  # hard cap on peak int8 activation memory, bytes (count_ram); None: no cap

    def over(self, spec: ArchSpec) -> list[str]:
        """What `spec` exceeds, one phrase per cap ("8,120 params > 8,000"); [] when it fits."""
        ops = plan(spec)
        n, macs, ram = sum(map(op_params, ops)), sum(map(op_macs, ops)), max(map(op_ram, ops))
        out = [f"{n:,} params > {self.params:,}"] if n > self.params else []
        if self.macs is not None and macs > self.macs:
            out.append(f"{macs:,} MACs > {self.macs:,}")
        if self.ram is not None and ram > self.ram:
            out.append(f"peak RAM {ram:,} bytes > {self.ram:,}")
        return out

    def fits(self, spec: ArchSpec) -> bool:
        return not self.over(spec)

    def with_params(self, params: int) -> Budget:
        return replace(self, params=params)

    def caps(self) -> str:
        """The device caps in words ("" without any): ", at most 1,070,000 MACs, peak RAM 6.0 KB"."""
        return "".join(
            [f", at most {self.macs:,} MACs" if self.macs is not None else ""]
            + [f", peak RAM at most {kb(self.ram)}" if self.ram is not None else ""])

    def __str__(self) -> str:
        return f"{self.params:,} params{self.caps()}"
