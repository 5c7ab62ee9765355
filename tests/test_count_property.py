"""Property test over 1,000 random specs from the whole family (every flag, every head, separable
blocks): count_params == numel of the built model == torchsummary's total; count_macs == the
multiply-accumulates the built convs perform; count_ram == the largest input + output of any conv or
pool the built model runs, measured by forward hooks; forward gives [batch, classes]; the receptive
field formula matches the one measured by gradients; a Budget's verdict agrees with the counts."""

import contextlib
import io
import random
import re

import pytest
import torch
from torch import nn
from torchsummary import summary

from space import (
    ArchSpec, Block, Budget, SpecError, build, count_macs, count_params, count_ram, final_receptive_field,
    receptive_field,
)
from space.spec import BN_MODES, DROPOUT_SITES, HEADS


def random_spec(rng: random.Random) -> ArchSpec:
    while True:
        blocks = tuple(
            Block(
                tuple(rng.randint(1, 24) for _ in range(rng.randint(1, 3))),
                padding=rng.randint(0, 1),
                transition=rng.choice([0, 0, rng.randint(1, 16)]),
                pool=rng.random() < 0.6,
                separable=rng.random() < 0.3,
            )
            for _ in range(rng.randint(1, 4))
        )
        num_classes, head = rng.choice([10, 10, 2, 7, rng.randint(2, 100)]), rng.choice(HEADS)
        if head == "gap":  # the last 3x3 conv is the classifier: num_classes wide, nothing after it
            last = blocks[-1]
            blocks = blocks[:-1] + (Block(last.widths[:-1] + (num_classes,), padding=last.padding,
                                          separable=last.separable),)
        try:
            return ArchSpec(
                blocks=blocks, in_channels=rng.choice([1, 1, 3]), in_size=rng.choice([28, 28, 32, rng.randint(8, 64)]),
                num_classes=num_classes, bn=rng.choice(BN_MODES),
                bn_after_relu=rng.random() < 0.5, conv_bias=rng.random() < 0.3,
                dropout=rng.choice([0.0, 0.05, 0.2]), dropout_at=rng.choice(DROPOUT_SITES),
                transition_act=rng.random() < 0.5, head=head,
                head_hidden=0 if head == "gap" else rng.choice([0, 0, rng.randint(1, 32)]),
                head_relu=rng.random() < 0.5,
            )
        except SpecError:
            continue  # geometry that shrinks below 1x1: draw again


def torchsummary_total(model: nn.Module, spec: ArchSpec) -> int:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        summary(model, (spec.in_channels, spec.in_size, spec.in_size), device="cpu")
    return int(re.search(r"Total params: ([\d,]+)", buf.getvalue()).group(1).replace(",", ""))


SPECS = [random_spec(random.Random(i)) for i in range(1000)]


def test_counts_match_torch_and_torchsummary_for_1000_specs():
    torch.set_num_threads(1)
    for spec in SPECS:
        model = build(spec)
        n = count_params(spec)
        assert n == sum(p.numel() for p in model.parameters()), spec
        assert n == torchsummary_total(model, spec), spec
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(3, spec.in_channels, spec.in_size, spec.in_size))
        assert out.shape == (3, spec.num_classes)
        assert count_macs(spec) == measured_macs(model, spec), spec
        assert count_ram(spec) == measured_ram(model, spec), spec


def measured_ram(model: nn.Module, spec: ArchSpec) -> int:
    """Per image: the largest input + output element count of any module that writes a new map."""
    peak = 0

    def hook(_m, inp, out: torch.Tensor) -> None:
        nonlocal peak
        peak = max(peak, inp[0][0].numel() + out[0].numel())

    kinds = (nn.Conv2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model(torch.zeros(1, spec.in_channels, spec.in_size, spec.in_size))
    for h in handles:
        h.remove()
    return peak


def test_other_layers_write_no_new_map():
    """What count_ram leaves out really runs in place or as a view, or folds away: ReLU is in
    place, dropout and batch norm in eval keep the shape (batch norm folds into its conv for int8),
    flatten is a view."""
    for spec in SPECS[:200]:
        for m in build(spec).modules():
            if isinstance(m, nn.ReLU):
                assert m.inplace
            assert isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.ReLU, nn.BatchNorm2d, nn.Dropout,
                                  nn.Flatten, nn.Sequential)), type(m)


def test_a_budget_judges_each_cap_by_the_exact_counts():
    rng = random.Random(7)
    for spec in SPECS[:300]:
        n, macs, ram = count_params(spec), count_macs(spec), count_ram(spec)
        assert Budget(n, macs, ram).fits(spec)
        cap = rng.choice(["params", "macs", "ram"])
        tight = Budget(n - (cap == "params"), macs - (cap == "macs"), ram - (cap == "ram"))
        assert len(tight.over(spec)) == 1 and {"params": "params >", "macs": "MACs >", "ram": "RAM"}[cap] in tight.over(spec)[0]


def measured_macs(model: nn.Module, spec: ArchSpec) -> int:
    """Per image: each conv output element costs (input channels per group) x kernel area MACs."""
    total = 0

    def hook(m: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, spec.in_channels, spec.in_size, spec.in_size))
    for h in handles:
        h.remove()
    return total


def measured_rf(spec: ArchSpec) -> int:
    """Receptive field of the last conv/pool, measured: gradient support of one output pixel.

    Max-pools become average pools (same geometry, gradient reaches every input), all weights
    are positive and the input is positive, so no ReLU blocks the gradient; the input is made
    large enough that the field is not clipped by the border.
    """
    rf = final_receptive_field(spec)
    jump = max(r.jump for r in receptive_field(spec))
    size = rf * 2 + 8 * jump + 8
    big = ArchSpec.from_dict({**spec.to_dict(), "in_size": size, "head": "conv_gap", "dropout_at": "conv"})
    model = build(big).eval()
    layers = []
    for m in model:
        if isinstance(m, nn.AdaptiveAvgPool2d):
            break
        layers.append(nn.AvgPool2d(2, 2) if isinstance(m, nn.MaxPool2d) else m)
    features = nn.Sequential(*layers[: _last_spatial(layers) + 1])
    with torch.no_grad():
        for p in features.parameters():
            p.fill_(0.1)
    x = torch.ones(1, big.in_channels, size, size, requires_grad=True)
    out = features(x)
    c = out.shape[-1] // 2
    out[0, :, c, c].sum().backward()
    nz = (x.grad[0].abs().sum(0) > 0).nonzero()
    return int(nz[:, 0].max() - nz[:, 0].min() + 1)


def _last_spatial(layers: list[nn.Module]) -> int:
    return max(i for i, m in enumerate(layers) if isinstance(m, (nn.Conv2d, nn.AvgPool2d)))


@pytest.mark.parametrize("i", range(0, 1000, 25))
def test_receptive_field_formula_matches_gradient(i):
    spec = SPECS[i]
    assert measured_rf(spec) == final_receptive_field(spec)
