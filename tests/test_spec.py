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
