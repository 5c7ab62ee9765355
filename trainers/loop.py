"""Train one model with one recipe on device-resident data; report each epoch.

    result = train(spec, data.train, recipe, evals={"val": data.val}, norm=(data.mean, data.std),
                   report=lambda stats: stats.val_acc < 0.5)   # return True to stop early
    result.epochs[-1].val_acc, result.stopped

Speed comes from what the seed notebooks' loop does not do: no per-image PIL transforms (the
whole batch is warped at once on the device), no DataLoader, and no host synchronization inside
the batch loop (running sums stay on the device until the epoch ends).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from space.errors import InputError
from space.model import build
from space.recipe import ONECYCLE_RISE, Recipe
from space.spec import ArchSpec
from trainers.augment import norm_tensors, normalize, random_affine, random_crop, random_erase, random_flip, to_unit
from trainers.average import WeightAverage
from trainers.distill import Distill, distill_loss
from trainers.dropout import bulk_mask_dropout
from trainers.precision import resolve_precision

if TYPE_CHECKING:  # the trainer takes splits; which data they come from is not its business
    from trainers.data import DeviceData, Split

EVAL_BATCH = 1000
NAN_CHECK_EVERY = 50  # batches between non-finite checks (one host sync each)


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite; training of this candidate stops."""


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    lr: float  # learning rate at the start of the epoch
    train_loss: float
    train_acc: float  # accuracy on the (augmented) training batches, in %
    seconds: float  # wall time of the training pass alone
    evals: dict[str, tuple[float, float]] = field(default_factory=dict)  # set -> (loss, acc %)

    @property
    def val_acc(self) -> float:
        return self.evals["val"][1]

    def acc(self, name: str) -> float:
        return self.evals[name][1]


@dataclass
class TrainResult:
    epochs: list[EpochStats]
    stopped: str | None = None  # why training ended early (the report callback asked), or None
    model: nn.Module | None = None  # the weights evaluated and kept: the average with recipe.ema
    last_step: nn.Module | None = None  # with recipe.ema, the last optimizer step's weights

    def curve(self, name: str) -> list[float]:
        return [e.acc(name) for e in self.epochs]

    def to_dict(self) -> dict:
        return {"epochs": [asdict(e) for e in self.epochs], "stopped": self.stopped}


def consistency(accs: list[float], k: int = 3) -> float:
    """The seeds' "consistently >= X%": the minimum accuracy over the last k epochs."""
    return min(accs[-k:])


def first_epoch_at(accs: list[float], target: float) -> int | None:
    return next((i + 1 for i, a in enumerate(accs) if a >= target), None)


class DeviceError(InputError):
    """A --device that does not exist or cannot be used here."""


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as e:
        raise DeviceError(f"--device {name}: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {name}: no CUDA device is available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"--device {name}: use auto, cpu, cuda or cuda:N")
    return device


def _batches(model: nn.Module, split: Split, norm: tuple[float, float], precision: str):
    """(logits, labels) of `split` in evaluation batches, the model in eval mode, no gradients."""
    model.eval()
    mean, std = norm_tensors(*norm, split.x.device)
    last = wants_channels_last(split.x.device, precision)
    for i in range(0, len(split), EVAL_BATCH):
        x = normalize(to_unit(split.x[i : i + EVAL_BATCH]), mean, std)
        with _autocast(x.device, precision):
            yield model(_layout(x, last)).float(), split.y[i : i + EVAL_BATCH]


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, norm: tuple[float, float], precision: str = "fp32") -> tuple[float, float]:
    """(mean cross-entropy, accuracy %) of `model` on `split`."""
    loss = torch.zeros((), device=split.y.device)
    correct = torch.zeros((), device=split.y.device, dtype=torch.long)
    for out, y in _batches(model, split, norm, precision):
        loss += F.cross_entropy(out, y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
    n = max(len(split), 1)
    return loss.item() / n, 100.0 * correct.item() / n


@torch.no_grad()
def logits_of(model: nn.Module, split: Split, norm: tuple[float, float], precision: str = "fp32") -> torch.Tensor:
    """`model`'s logits (fp32) for every image of `split`, in order, on the split's device."""
    precision = resolve_precision(precision, split.x.device.type)
    return torch.cat([out for out, _ in _batches(model, split, norm, precision)])


@torch.no_grad()
def correct_mask(model: nn.Module, split: Split, norm: tuple[float, float], precision: str = "fp32") -> torch.Tensor:
    """Per image of `split`, whether `model` classifies it right (bool, on the CPU): what a paired
    test of two models on the same images needs."""
    return torch.cat([(out.argmax(1) == y).cpu() for out, y in _batches(model, split, norm, precision)])


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    # convs and matmuls in bf16, losses and BN statistics in fp32 (autocast's own op lists)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def wants_channels_last(device: torch.device, precision: str) -> bool:
    """Whether to train and evaluate in channels-last memory order.

    On CUDA always. On a CPU in fp32 too: oneDNN's 1x1 convolutions on wide, large maps run far
    faster channels-last, and the slowest designs of a search are made of those, so a search's
    designs train faster in all though a few small plain ones lose (`bench layout` measures it
    per design). CPU bf16 autocast keeps NCHW: channels-last there is unmeasured (it needs a CPU
    with native bf16)."""
    return device.type == "cuda" or precision == "fp32"


def _layout(x: torch.Tensor, last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if last else x


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer in ("adam", "adamw"):
        cls = torch.optim.Adam if recipe.optimizer == "adam" else torch.optim.AdamW
        return cls(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
        nesterov=recipe.nesterov and recipe.momentum > 0, weight_decay=recipe.weight_decay,
    )


def _scheduler(opt: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
    if recipe.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=recipe.lr, epochs=recipe.epochs, steps_per_epoch=steps_per_epoch, pct_start=ONECYCLE_RISE,
        )
    return torch.optim.lr_scheduler.StepLR(opt, step_size=recipe.step_size, gamma=recipe.gamma)


def train(
    model: ArchSpec | nn.Module,
    data: Split,
    recipe: Recipe,
    *,
    evals: dict[str, Split],
    norm: tuple[float, float],
    seed: int = 0,
    report: Callable[[EpochStats], bool] | None = None,
    compile: bool | str = False,
    precision: str = "fp32",
    distill: Distill | None = None,
    channels_last: bool | None = None,
) -> TrainResult:
    """Train with SGD / Adam / AdamW and StepLR (per epoch) or OneCycle (per batch); evaluate `evals` each epoch.

    `report(stats)` is called after every epoch; returning True stops training (pruning).
    Raises NonFiniteLoss when the loss becomes NaN/inf. Same seed, same device => same curve.
    precision: fp32, bf16 (autocast) or auto (see resolve_precision). compile: True, or a
    torch.compile mode such as "reduce-overhead" (CUDA graphs). distill: a teacher's logits for
    every image of `data` and their weight in the loss (trainers/distill.py). channels_last:
    the memory order to train in; None chooses by `wants_channels_last`.
    """
    if distill is not None and len(distill.logits) != len(data):
        raise ValueError(f"the teacher's logits cover {len(distill.logits)} images, the split {len(data)}")
    device = data.x.device
    precision = resolve_precision(precision, device.type)
    torch.manual_seed(seed)
    net = build(model) if isinstance(model, ArchSpec) else model
    net = net.to(device)
    if channels_last is None:
        channels_last = wants_channels_last(device, precision)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    # the average is copied before the CPU dropout swap, so it holds plain nn.Dropout (exportable)
    average = WeightAverage(net, max(1.0, recipe.ema * steps_per_epoch(len(data), recipe))) if recipe.ema else None
    # dynamo cannot trace the numpy mask; compiled, nn.Dropout's mask comes from inductor's own
    # generated random kernel instead
    eager_cpu = device.type == "cpu" and not compile
    fast_dropout = bulk_mask_dropout(net, seed) if eager_cpu else contextlib.nullcontext(net)
    with fast_dropout:
        step_fn = torch.compile(net, mode=compile if isinstance(compile, str) else None) if compile else net
        return _fit(net, step_fn, data, recipe, evals, norm, seed, report, precision, distill, average, channels_last)


def steps_per_epoch(n: int, recipe: Recipe) -> int:
    """Optimizer steps per epoch: the last partial batch is dropped (BN dislikes tiny batches)."""
    return max(1, n // min(recipe.batch_size, n))


def _fit(
    net: nn.Module,
    step_fn: Callable[[torch.Tensor], torch.Tensor],
    data: Split,
    recipe: Recipe,
    evals: dict[str, Split],
    norm: tuple[float, float],
    seed: int,
    report: Callable[[EpochStats], bool] | None,
    precision: str,
    distill: Distill | None = None,
    average: WeightAverage | None = None,
    channels_last: bool = False,
) -> TrainResult:
    device = data.x.device
    mean, std = norm_tensors(*norm, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    n = len(data)
    bs = min(recipe.batch_size, n)
    steps = steps_per_epoch(n, recipe)
    scored = average.model if average else net  # the weights every evaluation sees
    opt = _optimizer(net, recipe)
    sched = _scheduler(opt, recipe, steps)
    # a host sync is free on CPU, so check often there; on GPU only once per epoch
    check_every = NAN_CHECK_EVERY if device.type == "cpu" else steps
    result = TrainResult(epochs=[], model=scored, last_step=net if average else None)
    for epoch in range(1, recipe.epochs + 1):
        lr = opt.param_groups[0]["lr"]
        net.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        perm = torch.randperm(n, generator=gen, device=device)
        for b in range(steps):
            idx = perm[b * bs : (b + 1) * bs]
            x = random_affine(to_unit(data.x[idx]), gen, recipe.rotate, recipe.scale, recipe.translate)
            x = random_flip(random_crop(x, gen, recipe.crop_pad), gen, recipe.hflip)
            x, y = random_erase(normalize(x, mean, std), gen, recipe.erase), data.y[idx]
            with _autocast(device, precision):
                out = step_fn(_layout(x, channels_last))
                loss = distill_loss(out.float(), y, idx, distill, recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if average:
                average.update()
            if recipe.schedule == "onecycle":
                sched.step()
            loss_sum += loss.detach() * len(idx)
            correct += (out.detach().argmax(1) == y).sum()
            if (b + 1) % check_every == 0 or b == steps - 1:
                if not math.isfinite(loss_sum.item()):
                    raise NonFiniteLoss(f"non-finite training loss in epoch {epoch}, batch {b + 1}")
        if not _all_finite(net):  # the last step can blow up weights after the last loss was checked
            raise NonFiniteLoss(f"non-finite weights after epoch {epoch}")
        if recipe.schedule == "step":
            sched.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        seen = steps * bs
        stats = EpochStats(
            epoch, lr, loss_sum.item() / seen, 100.0 * correct.item() / seen, seconds,
            {name: evaluate(scored, split, norm, precision) for name, split in evals.items()},
        )
        result.epochs.append(stats)
        if report is not None and report(stats):
            result.stopped = f"stopped by report after epoch {epoch}"
            break
    return result


def _all_finite(net: nn.Module) -> bool:
    return bool(torch.stack([p.detach().isfinite().all() for p in net.parameters()]).all())


@dataclass
class Retrained:
    result: TrainResult
    state_dict: dict[str, torch.Tensor]  # the final weights, on the CPU
    test_correct: torch.Tensor  # per test image, whether the final model gets it right (CPU, bool)


def retrain(
    spec: ArchSpec,
    recipe: Recipe,
    data: DeviceData,
    *,
    seed: int,
    full: bool = False,
    report: Callable[[EpochStats], bool] | None = None,
    compile: bool = False,
    precision: str = "fp32",
    distill: Distill | None = None,
) -> Retrained:
    """Train a chosen design again, testing after every epoch; keep its weights on the CPU.

    full=False fits the training split and also tracks validation accuracy (what confirmation
    ranks by); full=True fits train + val (60,000 MNIST images) and tracks test accuracy only.
    distill's logits cover the split fit (Teacher.distill(full=...)).
    """
    fit_on = data.full_train() if full else data.train
    evals = {"test": data.test} if full else {"val": data.val, "test": data.test}
    result = train(spec, fit_on, recipe, evals=evals, norm=(data.mean, data.std), seed=seed,
                   report=report, compile=compile, precision=precision, distill=distill)
    state = {k: v.detach().cpu() for k, v in result.model.state_dict().items()}
    mask = correct_mask(result.model, data.test, (data.mean, data.std), resolve_precision(precision, data.test.x.device.type))
    return Retrained(result, state, mask)
