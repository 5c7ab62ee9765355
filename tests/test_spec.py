import json

import pytest

from space import ArchSpec, Block, SpecError, count_params
from space.presets import PRESETS


def test_json_round_trip_and_stable_digest():
    for spec, _ in PRESETS.values():
        again = ArchSpec.from_json(spec.to_json())
        assert again == spec
        assert again.digest() == spec.digest()
    digests = {spec.digest() for spec, _ in PRESETS.values()}
    assert len(digests) == len(PRESETS)


def test_digest_changes_with_any_field():
    base = ArchSpec(blocks=(Block((8, 8), pool=True), Block((16,))))
    assert base.digest() != ArchSpec(blocks=(Block((8, 9), pool=True), Block((16,)))).digest()
    assert base.digest() != ArchSpec(blocks=base.blocks, dropout=0.1).digest()


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(bn="batch"), "bn"),
        (lambda d: d.update(dropout=1.5), "dropout"),
        (lambda d: d["blocks"][0].update(widths=[8, -1]), "blocks[0].widths[1]"),
        (lambda d: d["blocks"][0].update(padding=2), "blocks[0].padding"),
        (lambda d: d.update(blocks=[]), "blocks"),
        (lambda d: d.update(colour="red"), "colour"),
        (lambda d: d["blocks"][1].update(widths=[8] * 12), "blocks[1].widths"),
        (lambda d: d.update(head="fc"), "head"),
    ],
)
def test_malformed_spec_names_the_field(mutate, field):
    d = json.loads(PRESETS["seed-000"][0].to_json())
    mutate(d)
    with pytest.raises(SpecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        ArchSpec.from_dict(d)


def test_not_json_is_a_spec_error():
    with pytest.raises(SpecError, match="not valid JSON"):
        ArchSpec.from_json("{blocks: ")


def test_input_shape_is_not_hard_coded():
    spec = ArchSpec(blocks=(Block((8,), padding=1, pool=True), Block((16,))), in_channels=3, in_size=32, num_classes=100)
    assert count_params(spec) == 3 * 9 * 8 + 16 + 8 * 9 * 16 + 32 + 16 * 100


def test_a_separable_block_is_depthwise_then_pointwise_except_the_first_conv():
    """Each 3x3 conv of a separable block is a depthwise 3x3 (9 params per channel, no bias) and a
    pointwise 1x1; the network's first conv stays a full 3x3 (one input channel)."""
    full = ArchSpec(blocks=(Block((8, 16), pool=True), Block((16, 24))), conv_bias=True, bn="none")
    sep = ArchSpec(blocks=(Block((8, 16), pool=True, separable=True), Block((16, 24), separable=True)),
                   conv_bias=True, bn="none")
    head = 24 * 10 + 10
    assert count_params(full) == (9 * 8 + 8) + (9 * 8 * 16 + 16) + (9 * 16 * 16 + 16) + (9 * 16 * 24 + 24) + head
    assert count_params(sep) == (9 * 8 + 8) + (9 * 8 + 8 * 16 + 16) + (9 * 16 + 16 * 16 + 16) + (9 * 16 + 16 * 24 + 24) + head
    assert ArchSpec.from_json(sep.to_json()) == sep and sep.digest() != full.digest()


def test_dropout_after_the_global_pool_sits_before_the_head_and_nowhere_else():
    import torch

    from space import build
    from space.plan import plan

    spec = ArchSpec(blocks=(Block((8,), pool=True), Block((16,))), head="gap_conv", head_hidden=12,
                    dropout=0.1, dropout_at="gap")
    kinds = [op.kind for op in plan(spec)]
    assert kinds.count("dropout") == 1 and kinds[kinds.index("gap") + 1] == "dropout"
    assert kinds.index("dropout") < max(i for i, k in enumerate(kinds) if k == "conv")  # before the 1x1 head
    net = build(spec)
    assert sum(p.numel() for p in net.parameters()) == count_params(spec)
    net.eval()
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert ArchSpec.from_json(spec.to_json()) == spec
    with pytest.raises(SpecError, match="dropout_at: 'gap' .* needs head 'gap_conv'"):
        ArchSpec(blocks=spec.blocks, dropout=0.1, dropout_at="gap")
