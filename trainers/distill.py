"""Knowledge distillation's loss term: a teacher's softened outputs join each student's loss.
The parameter budget counts the student alone; the teacher (trainers/teacher.py) never ships.

    train(spec, data.train, recipe, ..., distill=teacher.distill(weight=0.5))

The teacher's logits are computed once per training image, without augmentation, and every
augmented view of that image is matched to them. The digits' warps (a few degrees, a few percent)
keep the label, and on a CPU one forward pass of the teacher per step would cost several times
the student's own step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Distill:
    logits: torch.Tensor  # the teacher's logits, one row per image of the split being fit, on its device
    weight: float = 0.5  # share of the loss that matches the teacher; the rest matches the labels
    temp: float = 4.0  # softens both outputs; the matching term is scaled by temp**2 (Hinton et al.)

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= 1 or self.temp <= 0:
            raise ValueError(f"distillation weight must be in [0, 1] and temperature > 0, got {self.weight}, {self.temp}")


def distill_loss(out: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, distill: Distill | None,
                 label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy with the labels, mixed with the KL divergence from the teacher's softened
    outputs for images `idx` of the split; the labels alone without a teacher."""
    hard = F.cross_entropy(out, y, label_smoothing=label_smoothing)
    if distill is None or distill.weight == 0:
        return hard
    t = distill.temp
    soft = F.kl_div(F.log_softmax(out / t, dim=1), F.log_softmax(distill.logits[idx] / t, dim=1),
                    log_target=True, reduction="batchmean")
    return (1 - distill.weight) * hard + distill.weight * t * t * soft
