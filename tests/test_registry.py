from __future__ import annotations

import pytest
import torch

import compactnets as cn
from compactnets.errors import ModelArgumentError, UsageError
from compactnets.models.mobilenetv2 import mobilenetv2_100
from compactnets.registry import MULTIPLIERS, matches_printed, parse_printed

BAD_MULTIPLIERS = [0, -5, -1.0, float("nan"), float("inf"), "0.5", True]


def test_list_models_wildcards() -> None:
    names = cn.list_models("antnet*")
    assert "antnet_g2" in names and "antnet_g2_cifar" in names
    assert all(n.startswith("antnet") for n in names)
    assert names == sorted(names)
    assert cn.list_models("*_cifar") and all(n.endswith("_cifar") for n in cn.list_models("*_cifar"))
    assert cn.list_models("no_such_*") == []


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(cn.UnknownModelError, match=r"did you mean: .*antnet_g1") as info:
        cn.create_model("antnet_g3")
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    with pytest.raises(cn.UnknownModelError, match="mobilenetv2_100"):
        cn.model_card("mobilenetv2_10")


def test_card_is_attached_and_num_classes_defaults_to_card() -> None:
    model = cn.create_model("antnet_g2_cifar")
    assert model.card.name == "antnet_g2_cifar" and model.num_classes == 100
    assert cn.create_model("antnet_g2_cifar", num_classes=10).num_classes == 10


def test_width_alias_and_bad_kwargs() -> None:
    narrow = cn.profile(cn.create_model("mobilenetv2_100", width=0.5), 224)
    assert narrow.params < 2.5e6
    with pytest.raises(TypeError, match="mobilenetv2_100"):
        cn.create_model("mobilenetv2_100", no_such_option=1)
    with pytest.raises(ValueError, match="pretrained"):
        cn.create_model("antnet_g2", pretrained=True)  # no published weights


@pytest.mark.parametrize("name", cn.list_models())
def test_every_builder_refuses_bad_multipliers_before_building(name: str) -> None:
    for value in BAD_MULTIPLIERS:
        for keyword in ("width", "depth"):
            with pytest.raises(ModelArgumentError, match=rf"^{name}: {keyword} must be a positive, finite number"):
                cn.create_model(name, **{keyword: value})
        for keyword in MULTIPLIERS:  # the builder's own keywords, through create_model
            with pytest.raises(ModelArgumentError, match=rf"^{name}: {keyword} must be"):
                cn.create_model(name, **{keyword: value})


def test_multiplier_errors_are_usage_errors_and_cover_direct_builder_calls() -> None:
    with pytest.raises(ModelArgumentError, match="width_mult must be a positive") as info:
        mobilenetv2_100(width_mult=-5)  # the registered builder, called without create_model
    assert isinstance(info.value, ValueError) and isinstance(info.value, UsageError)
    with pytest.raises(ModelArgumentError, match="depth must be"):
        cn.create_model("antnet_g1", depth=-1)
    with torch.device("meta"):  # valid multipliers still build
        assert cn.create_model("antnet_g1", width=0.5, depth=1.5).card.name == "antnet_g1"
        assert cn.create_model("mobilenetv2_100", width_mult=0.75, head_width_mult=1).num_classes == 1000


def test_every_card_is_complete() -> None:
    for name in cn.list_models():
        card = cn.model_card(name)
        assert card.paper and card.table and card.recipe, name
        assert len(card.input_size) == 3 and card.num_classes > 0, name
        # every model is checked against a number: a reference count or a reproduced paper number
        assert card.ref_params is not None or "params" in card.reproduces, name
        assert card.ref_macs is not None or "madds" in card.reproduces, name
        assert set(card.reproduces) <= {"params", "madds"}, name
        if card.paper_madds and "madds" not in card.reproduces:
            assert card.note, f"{name}: paper MAdds not reproduced, the card must say why"
        card.to_dict()


@pytest.mark.parametrize(
    ("printed", "value", "unit"),
    [("3.7M", 3.7e6, 1e5), ("569M", 569e6, 1e6), ("0.221M", 0.221e6, 1e3), ("10.7G", 10.7e9, 1e8)],
)
def test_parse_printed(printed: str, value: float, unit: float) -> None:
    got_value, got_unit = parse_printed(printed)
    assert got_value == pytest.approx(value) and got_unit == pytest.approx(unit)


def test_matches_printed_rounding_truncation_and_tolerance() -> None:
    assert matches_printed(3.46e6, "3.5M")  # rounded
    assert matches_printed(3.4708e6, "3.4M")  # truncated
    assert not matches_printed(3.56e6, "3.4M")
    assert not matches_printed(91.23e6, "91.1M")
    assert matches_printed(91.23e6, "91.1M", rtol=0.002)
    with pytest.raises(ValueError, match="cannot parse"):
        parse_printed("about 4M")
