"""Paper tables as printed, against the cards: every row that names a registered model has the row's numbers.

Each literal copies a table's rows as printed (the seed documents, or the paper or page named above it); each
test checks every row it maps to a registered name, so an edit to a card cannot drift from its table. A number
of another configuration than the card's (SeesawNet Table 6's 4x4 final map) must be in the card's note.
"""

from __future__ import annotations

import math

import pytest

import compactnets as cn
from compactnets.registry import parse_printed


def _same_number(card: str | None, printed: str) -> bool:
    """``card`` and ``printed`` are the same number at the coarser of their precisions: "10.7G" is "10,704M",
    "65.8M" is not "65M". A trailing "B" (billions, as EfficientNet prints FLOPs) reads as "G"."""
    if card is None:
        return False
    card_value, card_unit = parse_printed(card)
    value, unit = parse_printed(printed.replace(",", "").replace("B", "G"))
    coarser = max(card_unit, unit)
    return math.floor(card_value / coarser + 0.5 + 1e-9) == math.floor(value / coarser + 0.5 + 1e-9)


def _check(
    name: str, params: str | None = None, madds: str | None = None, note: tuple[str, ...] = (), **metrics: float
) -> None:
    """The card of ``name`` holds these printed numbers: params and MAdds in its fields, ``note`` strings in its
    note, and each metric (e.g. ``top1=57.5``) in ``paper_metrics``."""
    card = cn.model_card(name)
    if params is not None:
        assert _same_number(card.paper_params, params), f"{name}: paper_params {card.paper_params} vs {params}"
    if madds is not None:
        assert _same_number(card.paper_madds, madds), f"{name}: paper_madds {card.paper_madds} vs {madds}"
    for printed in note:
        assert printed in card.note, f"{name}: the note does not give {printed}"
    for key, value in metrics.items():
        assert card.paper_metrics.get(key) == pytest.approx(value, abs=1e-9), f"{name}: {key}"


def _top1(error: float) -> float:
    return round(100 - error, 2)


def test_same_number() -> None:
    assert _same_number("10.7G", "10,704M") and _same_number("65M", "65M") and _same_number("0.39G", "0.39B")
    assert not _same_number("65.8M", "65M") and not _same_number("4.1M", "4.2M") and not _same_number(None, "1M")


# ---------------------------------------------------------------------------- seed documents
# PydMobileNet Table 4 (CIFAR): model, depth, #params, FLOPs, CIFAR-10 error, CIFAR-100 error ("-": not printed).
PYDMOBILENET_TABLE_4 = [
    ("Network in Network [30]", "-", "-", "-", 8.81, None),
    ("All-CNN [41]", "-", "-", "-", 7.25, 33.71),
    ("Deeply Supervised Net [29]", "-", "-", "-", 7.97, 34.57),
    ("Highway Network [42]", "-", "-", "-", 7.72, 32.39),
    ("FractalNet [26]", "21", "38.6M", "-", 5.22, 23.30),
    ("FractalNet with Dropout/Drop-path", "21", "38.6M", "-", 4.60, 23.73),
    ("ResNet [13]", "110", "1.7M", "-", 6.61, None),
    ("ResNet (reported by [21])", "110", "1.7M", "-", 6.41, 27.22),
    ("ResNet with Stochastic Depth [21]", "110", "1.7M", "-", 5.23, 24.58),
    ("ResNet with Stochastic Depth, 1202", "1202", "19.4M", "2,840M", 4.91, None),
    ("Wide ResNet [47]", "16", "11.0M", "-", 4.81, 22.07),
    ("Wide ResNet, 28", "28", "36.5M", "5,248M", 4.17, 20.50),
    ("ResNet (pre-activation) [14]", "164", "1.7M", "-", 5.46, 24.33),
    ("ResNet (pre-activation), 1001", "1001", "16.1M", "2,357M", 4.62, 22.71),
    ("ResNeXt-29 [46]", "29", "68.1M", "10,704M", 3.58, 17.31),
    ("NASNet-A [51]", "-", "3.3M", "-", 3.41, None),
    ("DenseNet-BC (k = 12) [20]", "100", "0.8M", "-", 4.51, 22.27),
    ("DenseNet-BC (k = 24)", "250", "15.3M", "-", 3.62, 17.60),
    ("DenseNet-BC (k = 40)", "190", "25.6M", "9,388M", 3.46, 17.18),
    ("CondenseNet light-94 [19]", "94", "0.33M", "122M", 5.00, 24.08),
    ("CondenseNet-86", "86", "0.52M", "65M", 5.00, 23.64),
    ("CondenseNet light-160", "160", "3.1M", "1,084M", 3.46, 17.55),
    ("CondenseNet-182", "182", "4.2M", "513M", 3.76, 18.47),
    ("ResNet-110*", "110", "1.736M", "562M", 4.50, 18.00),
    ("PydMobileNet-Add-29-0.25", "29", "0.060M", "10M", 9.43, 21.96),
    ("PydMobileNet-Add-29-0.5", "29", "0.104M", "18M", 7.29, 20.26),
    ("PydMobileNet-Add-29-0.75", "29", "0.148M", "26M", 6.52, 17.95),
    ("PydMobileNet-Add-29-1", "29", "0.193M", "34M", 6.00, 17.54),
    ("PydMobileNet-Concat-29-0.25", "29", "0.092M", "14M", 7.33, 21.04),
    ("PydMobileNet-Concat-29-0.5", "29", "0.170M", "27M", 5.71, 17.27),
    ("PydMobileNet-Concat-29-0.75", "29", "0.247M", "39M", 5.68, 16.28),
    ("PydMobileNet-Add-56-0.25", "56", "0.109M", "19M", 7.38, 20.41),
    ("PydMobileNet-Add-56-0.5", "56", "0.200M", "36M", 6.19, 17.36),
    ("PydMobileNet-Add-56-0.75", "56", "0.292M", "52M", 5.55, 16.58),
    ("PydMobileNet-Add-56-1", "56", "0.382M", "69M", 4.98, 16.23),
    ("PydMobileNet-Concat-56-0.25", "56", "0.175M", "28M", 6.23, 17.85),
    ("PydMobileNet-Concat-56-0.5", "56", "0.332M", "53M", 5.24, 15.67),
    ("PydMobileNet-Concat-56-0.75", "56", "0.489M", "79M", 4.72, 14.60),
]
PYDMOBILENET_TABLE_4_NAMES = {
    "ResNeXt-29 [46]": "resnext29_16x64d_cifar",
    "DenseNet-BC (k = 12) [20]": "densenet_bc_100_k12_cifar",
    "CondenseNet-86": "condensenet_86_cifar",
    "CondenseNet-182": "condensenet_182_cifar",
    "ResNet-110*": "resnet110_cifar",
    **{
        f"PydMobileNet-{kind}-{depth}-{alpha}": f"pydmobilenet_{kind.lower()}_{depth}_{code}_cifar"
        for kind in ("Add", "Concat")
        for depth in (29, 56)
        for alpha, code in (("0.25", "025"), ("0.5", "050"), ("0.75", "075"), ("1", "100"))
        if (kind, alpha) != ("Concat", "1")
    },
}


def test_pydmobilenet_table_4() -> None:
    rows = {row[0]: row for row in PYDMOBILENET_TABLE_4}
    assert set(PYDMOBILENET_TABLE_4_NAMES) <= set(rows)
    for label, name in PYDMOBILENET_TABLE_4_NAMES.items():
        _, _, params, flops, c10, c100 = rows[label]
        _check(name, params=params, madds=None if flops == "-" else flops, cifar10_error=c10, cifar100_error=c100)


# SeesawNet Table 6 (CIFAR-10, 4x4 final map): model, permute, Multi-Adds, Top1.
SEESAWNET_TABLE_6 = [
    ("CondenseNet-86", "-", "65M", 95.00),
    ("IGCV3(0.5D)", "N", "51M", 94.07),
    ("IGCV3(0.5D)", "Y", "51M", 94.83),
    ("Seesaw-shareNet(v1 0.5D)", "N", "59M", 94.56),
    ("Seesaw-shareNet(v2 0.5D)", "Y", "57M", 95.09),
]


def test_seesawnet_table_6() -> None:
    (_, _, condense_madds, condense_top1), igcv3_n, igcv3_y, share_v1, share_v2 = SEESAWNET_TABLE_6
    _check("condensenet_86_cifar", madds=condense_madds, cifar10_error=_top1(condense_top1))
    # the other rows are the 4x4-final-map variants of the cards (whose fields hold Table 3's 8x8 counts)
    _check("igcv3_05d_cifar", note=(igcv3_n[2],), top1_final_map4_no_permute=igcv3_n[3])
    _check("igcv3_05d_cifar", note=(igcv3_y[2],), top1_final_map4=igcv3_y[3])
    _check("seesaw_share_v1_05d_cifar", note=(share_v1[2],), top1_final_map4=share_v1[3])
    _check("seesaw_share_v2_05d_cifar", note=(share_v2[2],), top1_final_map4=share_v2[3])


# ShuffleNet Table 6 (in the "Modern CNN" seed): model, Cls err. (%), Complexity (MFLOPs).
SHUFFLENET_TABLE_6 = [
    ("VGG-16 [30]", 28.5, "15300M"),
    ("ShuffleNet 2x (g = 3)", 26.3, "524M"),
    ("GoogleNet [33]*", 31.3, "1500M"),
    ("ShuffleNet 1x (g = 8)", 32.4, "140M"),
    ("AlexNet [21]", 42.8, "720M"),
    ("SqueezeNet [14]", 42.5, "833M"),
    ("ShuffleNet 0.5x (g = 4)", 41.6, "38M"),
]
SHUFFLENET_TABLE_6_NAMES = {
    "ShuffleNet 2x (g = 3)": "shufflenet_g3_200",
    "ShuffleNet 1x (g = 8)": "shufflenet_g8_100",
    "SqueezeNet [14]": "squeezenet_10",
}


def test_shufflenet_table_6() -> None:
    rows = {row[0]: row for row in SHUFFLENET_TABLE_6}
    for label, name in SHUFFLENET_TABLE_6_NAMES.items():
        _, error, mflops = rows[label]
        _check(name, madds=mflops, top1=_top1(error))
    assert "ShuffleNet Table 6" in cn.model_card("squeezenet_10").table  # 833M is ShuffleNet's, not SqueezeNet's


# SqueezeNet Tables 2 and 3 (in the "Modern CNN" seed): the uncompressed SqueezeNet row of Table 2 (model size,
# top-1, top-5) and Table 3 (architecture, top-1, top-5, model size).
SQUEEZENET_TABLE_2 = [("SqueezeNet (ours), None, 32 bit", "4.8MB", 57.5, 80.3)]
SQUEEZENET_TABLE_3 = [
    ("Vanilla SqueezeNet", 57.5, 80.3, "4.8MB"),
    ("SqueezeNet + Simple Bypass", 60.4, 82.5, "4.8MB"),
    ("SqueezeNet + Complex Bypass", 58.8, 82.0, "7.7MB"),
]


def test_squeezenet_tables_2_and_3() -> None:
    (_, size, top1, top5) = SQUEEZENET_TABLE_2[0]
    _check("squeezenet_10", note=(size,), top1=top1, top5=top5)
    names = ["squeezenet_10", "squeezenet_10_simple_bypass", "squeezenet_10_complex_bypass"]
    for name, (_, top1, top5, size) in zip(names, SQUEEZENET_TABLE_3, strict=True):
        _check(name, note=(size,), top1=top1, top5=top5)
    assert cn.model_card("squeezenet_10_complex_bypass").paper_params is None  # Table 3 prints only the size


# Xception Table 1 (in the "Modern CNN" seed): model, top-1 accuracy, top-5 accuracy.
XCEPTION_TABLE_1 = [
    ("VGG-16", 0.715, 0.901),
    ("ResNet-152", 0.770, 0.933),
    ("Inception V3", 0.782, 0.941),
    ("Xception", 0.790, 0.945),
]


def test_xception_table_1() -> None:
    _, top1, top5 = XCEPTION_TABLE_1[-1]
    _check("xception", top1=round(100 * top1, 2), top5=round(100 * top5, 2))


# ---------------------------------------------------------------------------- papers outside the seeds
# Rows of corrected cards whose papers are not among the seeds; only the columns the cards hold.
# DenseNet Table 3: model, top-1 single-crop error (%).
DENSENET_TABLE_3 = [("DenseNet-121", 25.02)]
# SENet Table 2, SENet columns: model, top-1 error (%), GFLOPs (SE-ResNeXt-50's 4.25 is left out: not re-read).
SENET_TABLE_2 = [("SE-ResNet-50", 23.29, "3.87G"), ("SE-ResNeXt-50", 21.10, None)]
# EfficientNet Table 2, arXiv v5: model, top-1, top-5, #params, #FLOPs; then the ICML 2019 version's top-1 column.
EFFICIENTNET_TABLE_2_V5 = [
    ("EfficientNet-B0", 77.1, 93.3, "5.3M", "0.39B"),
    ("EfficientNet-B1", 79.1, 94.4, "7.8M", "0.70B"),
    ("EfficientNet-B2", 80.1, 94.9, "9.2M", "1.0B"),
    ("EfficientNet-B3", 81.6, 95.7, "12M", "1.8B"),
]
EFFICIENTNET_TABLE_2_ICML_TOP1 = [76.3, 78.8, 79.8, 81.1]
# MobileNetV3 Table 3, arXiv v5: network, top-1, MAdds (M), params.
MOBILENETV3_TABLE_3_V5 = [("V3-Large 1.0", 75.2, "219M", "5.4M"), ("V3-Small 1.0", 67.4, "56M", "2.5M")]
# alvinwan/shiftresnet-cifar README at d2715d8, CIFAR-100 table, e = 6c rows: model, SRN Acc, Params (M).
SHIFTRESNET_README_CIFAR100 = [
    ("ResNet20", 69.73, "0.19M"),
    ("ResNet56", 72.33, "0.58M"),
    ("ResNet110", 73.17, "1.18M"),
]


def test_corrected_rows_outside_the_seeds() -> None:
    _check("densenet121", top1=_top1(DENSENET_TABLE_3[0][1]))
    for name, (_, error, gflops) in zip(["se_resnet50", "se_resnext50_32x4d"], SENET_TABLE_2, strict=True):
        _check(name, madds=gflops, top1=_top1(error))
        assert cn.model_card(name).paper_params is None  # Table 2 has no params column
    for row, icml in zip(EFFICIENTNET_TABLE_2_V5, EFFICIENTNET_TABLE_2_ICML_TOP1, strict=True):
        label, top1, top5, params, flops = row
        name = "efficientnet_" + label[-2:].lower()
        _check(name, params=params, madds=flops, note=(f"top-1 {icml}",), top1=top1, top5=top5)
        assert "arXiv v5" in cn.model_card(name).table
    v3_names = ["mobilenetv3_large_100", "mobilenetv3_small_100"]
    for name, (_, top1, madds, params) in zip(v3_names, MOBILENETV3_TABLE_3_V5, strict=True):
        _check(name, params=params, madds=madds, top1=top1)
        assert "arXiv v5" in cn.model_card(name).table
    for depth, (_, top1, params) in zip([20, 56, 110], SHIFTRESNET_README_CIFAR100, strict=True):
        _check(f"shiftresnet{depth}_cifar", params=params, top1=top1)
