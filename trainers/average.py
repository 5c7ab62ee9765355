"""Weight averaging: an exponential moving average (EMA) of a model's weights while it trains.

    avg = WeightAverage(net, horizon_steps=2 * steps_per_epoch)
    ... opt.step(); avg.update()
    evaluate(avg.model, ...)

The average is a copy of the model whose parameters and float buffers (batch norm's running
statistics) move a share 1/horizon toward the trained model's after every optimizer step, so
the weights of the last `horizon` steps dominate it. Early on the share is larger (1 - (1+t) /
(10+t), as timm's ModelEmaV2 warms up), so that the average does not lag far behind the first
epochs' fast progress. Integer buffers (batch norm's batch counter) are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    def __init__(self, net: nn.Module, horizon_steps: float) -> None:
        if horizon_steps < 1:
            raise ValueError(f"the averaging horizon must be at least one step, got {horizon_steps}")
        self.decay = 1.0 - 1.0 / horizon_steps
        self.steps = 0
        self.model = copy.deepcopy(net).requires_grad_(False)
        pairs = list(zip(self.model.parameters(), net.parameters()))
        pairs += [(a, b) for a, b in zip(self.model.buffers(), net.buffers()) if a.is_floating_point()]
        self._avg = [a for a, _ in pairs]
        self._live = [b for _, b in pairs]
        self._counters = [(a, b) for a, b in zip(self.model.buffers(), net.buffers()) if not a.is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        """Move the average toward the trained model's current weights (after each optimizer step)."""
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for a, b in zip(self._avg, self._live):
            a.lerp_(b, 1.0 - decay)
        for a, b in self._counters:
            a.copy_(b)
