import math
from dataclasses import replace

import pytest
import torch

from space import PRESETS, Recipe, build
from trainers import NonFiniteLoss, consistency, first_epoch_at, train

SPEC = PRESETS["seed-004"][0]
RECIPE = Recipe(epochs=2, batch_size=64, lr=0.05, rotate=5)


def run(data, recipe=RECIPE, **kw):
    return train(SPEC, data.train, recipe, evals={"val": data.val}, norm=(data.mean, data.std), **kw)


def test_short_training_lowers_the_loss(small_data):
    r = run(small_data, replace(RECIPE, epochs=3))
    assert r.epochs[-1].train_loss < r.epochs[0].train_loss
    assert r.epochs[-1].val_acc > 50  # 74-92% over 5 seeds x 1-2 threads x plain / AVX2 kernels
    assert all(e.seconds > 0 for e in r.epochs)


def test_same_seed_same_curve(small_data):
    a, b = run(small_data, seed=1), run(small_data, seed=1)
    c = run(small_data, seed=2)
    assert [e.train_loss for e in a.epochs] == [e.train_loss for e in b.epochs]
    assert a.curve("val") == b.curve("val")
    assert [e.train_loss for e in a.epochs] != [e.train_loss for e in c.epochs]


def test_non_finite_loss_stops_with_a_reason(small_data):
    model = build(SPEC)
    with torch.no_grad():
        model[0].weight.fill_(math.nan)
    with pytest.raises(NonFiniteLoss, match="non-finite training loss in epoch 1"):
        train(model, small_data.train, RECIPE, evals={}, norm=(small_data.mean, small_data.std))


def test_weights_blown_up_by_the_last_step_of_an_epoch_stop_training(small_data):
    # one batch per epoch: its loss is computed before the step that makes the weights infinite
    n = len(small_data.train.y)
    with pytest.raises(NonFiniteLoss, match="non-finite weights after epoch 1"):
        run(small_data, replace(RECIPE, batch_size=n, lr=math.inf, gamma=1.0))


def test_report_callback_can_stop_training(small_data):
    seen = []
    r = run(small_data, replace(RECIPE, epochs=5), report=lambda s: seen.append(s.epoch) or s.epoch == 2)
    assert seen == [1, 2] and len(r.epochs) == 2 and r.stopped


def test_step_lr_lowers_lr_on_schedule(small_data):
    r = run(small_data, replace(RECIPE, epochs=5, lr=0.08, step_size=2, gamma=0.5))
    assert [round(e.lr, 6) for e in r.epochs] == [0.08, 0.08, 0.04, 0.04, 0.02]


def test_onecycle_and_options_run(small_data):
    r = run(small_data, replace(RECIPE, schedule="onecycle", nesterov=True, weight_decay=1e-4, label_smoothing=0.1))
    assert len(r.epochs) == 2 and math.isfinite(r.epochs[-1].train_loss)


def test_consistency_and_first_epoch():
    accs = [98.0, 99.41, 99.3, 99.45, 99.42]
    assert consistency(accs, 3) == 99.3
    assert first_epoch_at(accs, 99.4) == 2
    assert first_epoch_at(accs, 99.9) is None


def test_dropout_swap_is_restored_after_training(small_data):
    model = build(SPEC)
    train(model, small_data.train, replace(RECIPE, epochs=1), evals={}, norm=(small_data.mean, small_data.std))
    assert sum(type(m).__name__ == "Dropout" for m in model.modules()) == 5


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_bulk_mask_dropout_rate_and_scale(p):
    import numpy as np

    from trainers.dropout import BulkMaskDropout

    layer = BulkMaskDropout(p, np.random.Generator(np.random.PCG64(0))).train()
    out = layer(torch.ones(1_000_000))
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - p) < 0.003  # 1e6 draws: the std of the rate is below 0.0005
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p)))
    assert torch.equal(layer.eval()(torch.ones(10)), torch.ones(10))  # identity at evaluation


def test_bulk_mask_dropout_keeps_a_channels_last_input_in_its_order():
    import numpy as np

    from trainers.dropout import BulkMaskDropout

    layer = BulkMaskDropout(0.3, np.random.Generator(np.random.PCG64(0))).train()
    x = torch.ones(8, 16, 28, 28).contiguous(memory_format=torch.channels_last)
    out = layer(x)
    assert out.is_contiguous(memory_format=torch.channels_last)  # no slow mixed-order product
    assert abs((out == 0).float().mean().item() - 0.3) < 0.01
    # each element is dropped on its own: the mask is not constant over a channel or a pixel
    assert 0 < (out == 0).float().mean(dim=1).std() and 0 < (out == 0).float().mean(dim=(2, 3)).std()


def _memory_order(model) -> set[bool]:
    return {m.weight.is_contiguous(memory_format=torch.channels_last) and not m.weight.is_contiguous()
            for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[1] > 1 and m.weight.shape[-1] > 1}


def test_fp32_on_cpu_trains_channels_last_and_either_order_learns(small_data):
    from trainers.loop import wants_channels_last

    assert wants_channels_last(torch.device("cpu"), "fp32") and not wants_channels_last(torch.device("cpu"), "bf16")
    last = run(small_data, replace(RECIPE, epochs=2), precision="fp32")
    nchw = run(small_data, replace(RECIPE, epochs=2), precision="fp32", channels_last=False)
    assert _memory_order(last.model) == {True} and _memory_order(nchw.model) == {False}
    # after 2 epochs on 2,000 images validation accuracy swings with batch-norm statistics (35-89%
    # over 5 seeds x 1-2 threads x plain / AVX2 kernels); training accuracy (73-78%) and the loss's
    # fall (0.98-1.12) are the steady signals that either order learns: chance is 10%
    for r in (last, nchw):
        assert r.epochs[0].train_loss - r.epochs[-1].train_loss > 0.5 and r.epochs[-1].train_acc > 50
    # the same batches and initial weights; only the dropout masks and rounding differ
    assert abs(last.epochs[0].train_loss - nchw.epochs[0].train_loss) < 0.15


def test_onecycle_changes_the_learning_rate_every_batch(small_data, monkeypatch):
    seen = []
    real_step = torch.optim.SGD.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    recipe = replace(RECIPE, epochs=1, batch_size=100, schedule="onecycle", lr=0.1)
    run(small_data, recipe)
    assert len(seen) == len(small_data.train) // 100
    assert len(set(seen)) == len(seen)  # a new learning rate at every batch
    assert max(seen) == pytest.approx(0.1, rel=0.05) and seen[0] < 0.01


def test_bf16_precision_trains_and_stays_close_to_fp32(small_data):
    # after 2 epochs on 2,000 images validation accuracy still swings with batch-norm statistics;
    # the training loss is the steady signal (15-epoch curves are compared in the README). Over 5
    # seeds x 1-2 threads x plain / AVX2 kernels: bf16 training accuracy 72-77%, the losses apart by
    # at most 0.043 after epoch 1 and 0.086 after epoch 2, while each falls by 0.97-1.12
    a = run(small_data, replace(RECIPE, epochs=2), precision="fp32")
    b = run(small_data, replace(RECIPE, epochs=2), precision="bf16")
    assert b.epochs[-1].train_acc > 50
    assert abs(a.epochs[0].train_loss - b.epochs[0].train_loss) < 0.15
    assert abs(a.epochs[-1].train_loss - b.epochs[-1].train_loss) < 0.25
    assert [e.train_loss for e in a.epochs] != [e.train_loss for e in b.epochs]  # bf16 really ran


def test_precision_resolution():
    from space.errors import InputError
    from trainers.precision import cpu_has_bf16, resolve_precision

    assert resolve_precision("auto", "cuda") == "fp32"
    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_has_bf16() else "fp32")
    assert resolve_precision("bf16", "cpu") == "bf16" and resolve_precision("fp32", "cuda") == "fp32"
    with pytest.raises(InputError, match="fp8"):
        resolve_precision("fp8", "cpu")


def test_weight_average_moves_toward_the_model_by_its_horizon_and_copies_counters():
    from trainers.average import WeightAverage

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    avg = WeightAverage(net, horizon_steps=100)
    start = avg.model[0].weight.clone()
    with torch.no_grad():
        for t in net.parameters():
            t.add_(1.0)
        net[1].running_mean.fill_(4.0)
        net[1].num_batches_tracked.fill_(7)
    for _ in range(200):
        avg.update()
    # each step closes a share 1 - decay of the gap; the warm-up (1 + t) / (10 + t) closes more early on
    decays = [min(0.99, (1 + t) / (10 + t)) for t in range(1, 201)]
    left = math.prod(decays)
    assert torch.allclose(avg.model[0].weight, start + 1.0 - left, atol=1e-5)
    assert torch.allclose(avg.model[1].running_mean, torch.full((2,), 4.0 * (1 - left)), atol=1e-5)
    assert avg.model[1].num_batches_tracked.item() == 7
    assert not any(p.requires_grad for p in avg.model.parameters())
    with pytest.raises(ValueError, match="at least one step"):
        WeightAverage(net, horizon_steps=0.5)


def test_weight_averaging_scores_the_average_and_leaves_training_unchanged(small_data):
    from trainers.loop import evaluate

    plain = run(small_data, seed=3)
    averaged = run(small_data, replace(RECIPE, ema=1.0), seed=3)
    assert plain.last_step is None and averaged.last_step is not None
    # the same training: the last step's weights are those of the run without an average
    for a, b in zip(plain.model.state_dict().values(), averaged.last_step.state_dict().values()):
        assert torch.equal(a, b)
    # every evaluation scores the average, which is what the result keeps
    assert averaged.curve("val")[-1] == evaluate(averaged.model, small_data.val, (small_data.mean, small_data.std))[1]
    assert averaged.curve("val") != plain.curve("val")
    assert [e.train_loss for e in averaged.epochs] == [e.train_loss for e in plain.epochs]
    # copied before the CPU dropout swap: the kept model holds plain nn.Dropout, as exports need
    assert {type(m).__name__ for m in averaged.model.modules()} >= {"Dropout"}
    assert not any(type(m).__name__ == "BulkMaskDropout" for m in averaged.model.modules())


def test_a_negative_averaging_horizon_is_refused():
    from space.recipe import RecipeError

    with pytest.raises(RecipeError, match="recipe.ema"):
        Recipe(ema=-1.0)


def test_compiled_training_runs_on_cpu_with_torchs_dropout(small_data):
    """torch.compile cannot trace the bulk-mask dropout's numpy mask, so a compiled model keeps
    nn.Dropout (inductor generates its mask) and trains like the eager one."""
    model = build(SPEC)
    r = train(model, small_data.train, replace(RECIPE, epochs=1), evals={"val": small_data.val},
              norm=(small_data.mean, small_data.std), compile=True)
    # one epoch on 2,000 images: inductor's dropout masks are not seeded, and runs land at 43-66%
    # (20 runs: 5 seeds x 1-2 threads x plain / AVX2 kernels), far above the 10% of chance that a
    # model which does not learn stays at
    assert math.isfinite(r.epochs[-1].train_loss) and r.epochs[-1].val_acc > 30
    assert sum(type(m).__name__ == "Dropout" for m in model.modules()) == 5
