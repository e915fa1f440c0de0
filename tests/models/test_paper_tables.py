"""Paper tables as printed, against the cards: every row that names a registered model has the row's numbers.

Each literal copies a table's rows as printed (the seed documents, or the paper or page named above it); each
test checks every row it maps to a registered name, so an edit to a card cannot drift from its table. A number
of another configuration than the card's (SeesawNet Table 6's 4x4 final map), or another paper's quote of the
card's network (ANTNets' 575M for MobileNet), must be in the card's note. For the seed tables, every card that
names the table must be mapped, and every row that maps to no card must be listed in docs/models.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

import compactnets as cn
from compactnets.registry import parse_printed

MODELS_DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"

ANTNETS = "ANTNets (Xiong et al. 2019)"
PYDMOBILENET = "PydMobileNet (Hoang & Jo 2018)"
SEESAWNET = "SeesawNet (Zhang 2019)"
CHANNELNETS = "ChannelNets (Gao et al. 2018)"


def _as_printed(card: str | None, printed: str) -> bool:
    """``card`` is ``printed``, digit for digit: only the way of writing may differ (thousands commas, a "B" for
    billions as EfficientNet prints FLOPs, ChannelNets' lower-case "m"). "10704M" is "10,704M"; "10.7G" and
    "65.8M" are not "10,704M" and "65M"."""
    if card is None:
        return False
    parse_printed(card)  # a card's field must parse as a printed number
    return card == printed.upper().replace(",", "").replace("B", "G")


def _check(
    name: str, params: str | None = None, madds: str | None = None, note: tuple[str, ...] = (), **metrics: float
) -> None:
    """The card of ``name`` holds these printed numbers: params and MAdds in its fields, ``note`` strings in its
    note, and each metric (e.g. ``top1=57.5``) in ``paper_metrics``."""
    card = cn.model_card(name)
    if params is not None:
        assert _as_printed(card.paper_params, params), f"{name}: paper_params {card.paper_params} vs {params}"
    if madds is not None:
        assert _as_printed(card.paper_madds, madds), f"{name}: paper_madds {card.paper_madds} vs {madds}"
    for printed in note:
        assert printed in card.note, f"{name}: the note does not give {printed}"
    for key, value in metrics.items():
        assert card.paper_metrics.get(key) == pytest.approx(value, abs=1e-9), f"{name}: {key}"


def _top1(error: float) -> float:
    return round(100 - error, 2)


def _percent(fraction: float) -> float:
    """ChannelNets prints top-1 as a fraction (0.705)."""
    return round(100 * fraction, 2)


def _covers(paper: str, table: str, names: Mapping[str, str | Sequence[str]], rows: Sequence[tuple]) -> None:
    """``names`` (row label -> card name or names) maps rows of ``paper``'s ``table``; every card that names
    that table is mapped, and every row left unmapped is listed in docs/models.md as "| <Paper> Table N | label |"."""
    labels = [row[0] for row in rows]
    assert set(names) <= set(labels), f"unknown rows: {sorted(set(names) - set(labels))}"
    mapped = {n for value in names.values() for n in ([value] if isinstance(value, str) else value)}
    cards = {n for n in cn.list_models() if (cn.model_card(n).paper, cn.model_card(n).table) == (paper, table)}
    assert cards <= mapped, f"{paper} {table}: cards not checked against the table: {sorted(cards - mapped)}"
    doc = MODELS_DOC.read_text()
    short = paper.split(" (")[0]
    for label in labels:
        if label not in names:
            row = f"| {short} {table} | {label} |"
            assert row in doc, f"{short} {table}: row {label!r} neither mapped nor in {MODELS_DOC.name}"


def test_as_printed() -> None:
    assert _as_printed("10704M", "10,704M") and _as_printed("65M", "65M") and _as_printed("0.39G", "0.39B")
    assert _as_printed("3.7M", "3.7m") and not _as_printed("1248424", "1.3m") and not _as_printed("10.7G", "10,704M")
    assert not _as_printed("65.8M", "65M") and not _as_printed("4.1M", "4.2M") and not _as_printed(None, "1M")


def test_the_checks_can_fail() -> None:
    """A card that drifts from its row, or a row neither mapped nor documented, fails."""
    with pytest.raises(AssertionError, match="paper_params"):
        _check("antnet_g2_cifar", params="2.3M")  # Table 3 prints 2.2M
    with pytest.raises(AssertionError, match="paper_madds"):
        _check("antnet_g2_cifar", madds="73.3M")
    with pytest.raises(AssertionError, match="top1"):
        _check("antnet_g2_cifar", top1=75.8)
    with pytest.raises(AssertionError, match="the note does not give"):
        _check("mobilenetv1_100", note=("576M",))
    with pytest.raises(AssertionError, match="neither mapped nor in"):
        _covers(ANTNETS, "Table 3", ANTNETS_TABLE_3_NAMES, [*ANTNETS_TABLE_3, ("ImaginaryNet", 1.0, 1.0, "1M", "1M")])
    with pytest.raises(AssertionError, match="cards not checked"):
        _covers(ANTNETS, "Table 3", {"MobileNetV2": "mobilenetv2_cifar"}, ANTNETS_TABLE_3)


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
    "DenseNet-BC (k = 24)": "densenet_bc_250_k24_cifar",
    "DenseNet-BC (k = 40)": "densenet_bc_190_k40_cifar",
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
    _covers(PYDMOBILENET, "Table 4", PYDMOBILENET_TABLE_4_NAMES, PYDMOBILENET_TABLE_4)


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
    names = {
        "CondenseNet-86": "condensenet_86_cifar",
        "IGCV3(0.5D)": "igcv3_05d_cifar",
        "Seesaw-shareNet(v1 0.5D)": "seesaw_share_v1_05d_cifar",
        "Seesaw-shareNet(v2 0.5D)": "seesaw_share_v2_05d_cifar",
    }
    _covers(SEESAWNET, "Table 6", names, SEESAWNET_TABLE_6)


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
    assert cn.model_card("squeezenet_10_simple_bypass").paper_params is None  # (4.8MB for this row)


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


# ---------------------------------------------------------------------------- seed comparison tables

# ANTNets Table 3 (CIFAR-100): network, top-1, top-5, #parameters, #MAdds.
ANTNETS_TABLE_3 = [
    ("ShuffleNet (1.5)", 70.0, 90.78, "2.3M", "91.0M"),
    ("MobileNetV2", 74.2, 93.3, "2.4M", "91.1M"),
    ("ANTNet (g = 1)", 75.9, 94.3, "2.7M", "91.4M"),
    ("ANTNet (g = 2)", 75.7, 93.6, "2.2M", "73.2M"),
    ("e-ANTNet", 76.7, 94.1, "4.4M", "154.9M"),
]
ANTNETS_TABLE_3_NAMES = {
    "MobileNetV2": "mobilenetv2_cifar",
    "ANTNet (g = 1)": "antnet_g1_cifar",
    "ANTNet (g = 2)": "antnet_g2_cifar",
    "e-ANTNet": "antnet_e_cifar",
}


def test_antnets_table_3() -> None:
    rows = {row[0]: row for row in ANTNETS_TABLE_3}
    for label, name in ANTNETS_TABLE_3_NAMES.items():
        _, top1, top5, params, madds = rows[label]
        _check(name, params=params, madds=madds, top1=top1, top5=top5)
    _covers(ANTNETS, "Table 3", ANTNETS_TABLE_3_NAMES, ANTNETS_TABLE_3)


# ANTNets Table 4 (CIFAR-100, channel-attention placements): network, top-1, top-5.
ANTNETS_TABLE_4 = [
    ("MobileNetV2", 74.2, 93.3),
    ("se-MobileNetV2", 74.1, 92.8),
    ("c-ANTNet", 73.4, 93.3),
    ("ANTNet-c", 74.4, 93.5),
    ("ANTNet (proposed)", 75.7, 93.6),
]
ANTNETS_TABLE_4_NAMES = {
    "MobileNetV2": "mobilenetv2_cifar",
    "se-MobileNetV2": "se_mobilenetv2_cifar",
    "c-ANTNet": "c_antnet_cifar",
    "ANTNet-c": "antnet_c_cifar",
    "ANTNet (proposed)": "antnet_g2_cifar",
}


def test_antnets_table_4() -> None:
    rows = {row[0]: row for row in ANTNETS_TABLE_4}
    for label, name in ANTNETS_TABLE_4_NAMES.items():
        _, top1, top5 = rows[label]
        _check(name, top1=top1, top5=top5)
    _covers(ANTNETS, "Table 4", ANTNETS_TABLE_4_NAMES, ANTNETS_TABLE_4)


# ANTNets Table 5 (CIFAR-100, ANTNet g = 1 with one reduction ratio for every block): ratio r, params, MAdds,
# top-1, top-5.
ANTNETS_TABLE_5 = [
    ("8", "3.5M", "92.3M", 75.9, 94.1),
    ("16", "3.0M", "91.7M", 75.2, 93.9),
    ("32", "2.8M", "91.5M", 75.5, 93.9),
    ("Ours (mixed)", "2.7M", "91.4M", 75.9, 94.3),
]
ANTNETS_TABLE_5_NAMES = {
    "8": "antnet_g1_r8_cifar",
    "16": "antnet_g1_r16_cifar",
    "32": "antnet_g1_r32_cifar",
    "Ours (mixed)": "antnet_g1_cifar",
}


def test_antnets_table_5() -> None:
    rows = {row[0]: row for row in ANTNETS_TABLE_5}
    for label, name in ANTNETS_TABLE_5_NAMES.items():
        _, params, madds, top1, top5 = rows[label]
        _check(name, params=params, madds=madds, top1=top1, top5=top5)
    _covers(ANTNETS, "Table 5", ANTNETS_TABLE_5_NAMES, ANTNETS_TABLE_5)


# ANTNets Table 6 (CIFAR-100, e-ANTNet with fixed or learned block weights): (w1, w2), top-1.
ANTNETS_TABLE_6 = [
    ("w = (0, 1)", 75.7),
    ("w = (1, 0)", 75.9),
    ("w = (0.5, 0.5)", 76.2),
    ("w = (learned, learned)", 76.7),
]
ANTNETS_TABLE_6_NAMES = {"w = (learned, learned)": "antnet_e_cifar"}


def test_antnets_table_6() -> None:
    rows = dict(ANTNETS_TABLE_6)
    for label, name in ANTNETS_TABLE_6_NAMES.items():
        _check(name, top1=rows[label])
    _covers(ANTNETS, "Table 6", ANTNETS_TABLE_6_NAMES, ANTNETS_TABLE_6)


# ANTNets Table 7 (ImageNet): model, #parameters, #MAdds, top-1, top-5 (None: printed "-").
ANTNETS_TABLE_7 = [
    ("MobileNetV1", "4.2M", "575M", 70.6, 89.5),
    ("SqueezeNext", "3.2M", "708M", 67.5, 88.2),
    ("ShuffleNet (1.5)", "3.4M", "292M", 71.5, None),
    ("ShuffleNet (x2)", "5.4M", "524M", 73.7, None),
    ("CondenseNet (G=C=4)", "2.9M", "274M", 71.0, 90.0),
    ("CondenseNet (G=C=8)", "4.8M", "529M", 73.8, 91.7),
    ("MobileNetV2", "3.4M", "300M", 72.0, 91.0),
    ("MobileNetV2 (1.4)", "6.9M", "585M", 74.7, 92.5),
    ("NASNet-A", "5.3M", "564M", 74.0, 91.3),
    ("AmoebaNet-A", "5.1M", "555M", 74.5, 92.0),
    ("PNASNet", "5.1M", "588M", 74.2, 91.9),
    ("DARTS", "4.9M", "595M", 73.1, 91.0),
    ("ANTNet (g = 1) (ours)", "3.7M", "322M", 73.2, 91.2),
    ("ANTNet (g = 2) (ours)", "3.2M", "267M", 72.8, 91.0),
    ("e-ANTNet (ours)", "5.5M", "545M", 74.2, 91.6),
    ("ANTNet (alpha = 1.4) (ours)", "6.8M", "598M", 75.0, 92.3),
]
# Rows whose numbers are the card's fields (top-5 too where the card holds one).
ANTNETS_TABLE_7_FIELDS = {
    "SqueezeNext": "squeezenext_23v5_200",
    "ShuffleNet (1.5)": "shufflenet_g3_150",
    "ShuffleNet (x2)": "shufflenet_g3_200",
    # the labels are swapped (ARCHITECTURES.md 7.3): the numbers are those of the other CondenseNet
    "CondenseNet (G=C=4)": "condensenet_74_g8c8",
    "CondenseNet (G=C=8)": "condensenet_74_g4c4",
    "ANTNet (g = 1) (ours)": "antnet_g1",
    "ANTNet (g = 2) (ours)": "antnet_g2",
    "e-ANTNet (ours)": "antnet_e",
    "ANTNet (alpha = 1.4) (ours)": "antnet_g1_140",
}
# Rows quoting a network whose card holds its own paper's numbers: what differs is in the card's note.
ANTNETS_TABLE_7_QUOTES = {
    "MobileNetV1": ("mobilenetv1_100", ("575M", "89.5")),
    "MobileNetV2": ("mobilenetv2_100", ("91.0",)),
    "MobileNetV2 (1.4)": ("mobilenetv2_140", ("92.5",)),
    "NASNet-A": ("nasnet_a_mobile", ("91.3",)),
}


def test_antnets_table_7() -> None:
    rows = {row[0]: row for row in ANTNETS_TABLE_7}
    for label, name in ANTNETS_TABLE_7_FIELDS.items():
        _, params, madds, top1, top5 = rows[label]
        top5_kw = {"top5": top5} if "top5" in cn.model_card(name).paper_metrics else {}
        _check(name, params=params, madds=madds, top1=top1, **top5_kw)
    for name in ("condensenet_74_g4c4", "condensenet_74_g8c8"):
        _check(name, note=("ANTNets Table 7 swaps the G=C=4 and G=C=8 labels",))
    _check("mobilenetv1_100", params="4.2M", top1=70.6, note=ANTNETS_TABLE_7_QUOTES["MobileNetV1"][1])
    for label in ("MobileNetV2", "MobileNetV2 (1.4)", "NASNet-A"):
        _, params, madds, top1, _ = rows[label]
        name, note = ANTNETS_TABLE_7_QUOTES[label]
        _check(name, params=params, madds=madds, top1=top1, note=note)
    names = {**ANTNETS_TABLE_7_FIELDS, **{label: name for label, (name, _) in ANTNETS_TABLE_7_QUOTES.items()}}
    _covers(ANTNETS, "Table 7", names, ANTNETS_TABLE_7)


# ANTNets Table 8 (iPhone 5s): model, MAdds, CoreML model size, latency (only MAdds are in the cards).
ANTNETS_TABLE_8 = [
    ("MobileNetV2", "300M", "14.7M", "197.2ms"),
    ("ANTNet (g = 1)", "322M", "15.8M", "214.2ms"),
    ("ANTNet (g = 2)", "267M", "13.4M", "157.7ms"),
]
ANTNETS_TABLE_8_NAMES = {"MobileNetV2": "mobilenetv2_100", "ANTNet (g = 1)": "antnet_g1", "ANTNet (g = 2)": "antnet_g2"}


def test_antnets_table_8() -> None:
    for label, madds, _, _ in ANTNETS_TABLE_8:
        _check(ANTNETS_TABLE_8_NAMES[label], madds=madds)
    _covers(ANTNETS, "Table 8", ANTNETS_TABLE_8_NAMES, ANTNETS_TABLE_8)


# PydMobileNet Table 3 (own models, CIFAR): model, depth, #params, FLOPs, CIFAR-10 error, CIFAR-100 error.
PYDMOBILENET_TABLE_3 = [
    ("ResNet-20*", "20", "0.278M", "87M", 7.3, None),
    ("ResNet-29-0.5", "29", "0.221M", "29M", 6.97, 19.62),
    ("MobileNet-29-0.5", "29", "0.079M", "12M", 8.63, 22.59),
    ("MobileNet-29-1", "29", "0.142M", "22M", 7.09, 19.40),
    ("MobileNet-29-1.5", "29", "0.206M", "32M", 6.56, 18.09),
    ("PydMobileNet-Add-29-0.25", "29", "0.060M", "10M", 9.43, 21.96),
    ("PydMobileNet-Add-29-0.5", "29", "0.104M", "18M", 7.29, 20.26),
    ("PydMobileNet-Add-29-0.75", "29", "0.148M", "26M", 6.52, 17.95),
    ("PydMobileNet-Add-29-1", "29", "0.193M", "34M", 6.00, 17.54),
    ("PydMobileNet-Concat-29-0.25", "29", "0.092M", "14M", 7.33, 21.04),
    ("PydMobileNet-Concat-29-0.5", "29", "0.170M", "27M", 5.71, 17.27),
    ("PydMobileNet-Concat-29-0.75", "29", "0.247M", "39M", 5.68, 16.28),
    ("ResNet-56*", "56", "0.861M", "277M", 5.4, None),
    ("ResNet-56-0.5", "56", "0.435M", "60M", 5.76, 17.60),
    ("MobileNet-56-0.5", "56", "0.151M", "23M", 6.75, 18.56),
    ("MobileNet-56-1", "56", "0.283M", "43M", 6.02, 17.15),
    ("MobileNet-56-1.5", "56", "0.416M", "63M", 5.29, 16.58),
    ("PydMobileNet-Add-56-0.25", "56", "0.109M", "19M", 7.38, 20.41),
    ("PydMobileNet-Add-56-0.5", "56", "0.200M", "36M", 6.19, 17.36),
    ("PydMobileNet-Add-56-0.75", "56", "0.292M", "52M", 5.55, 16.58),
    ("PydMobileNet-Add-56-1", "56", "0.382M", "69M", 4.98, 16.23),
    ("PydMobileNet-Concat-56-0.25", "56", "0.175M", "28M", 6.23, 17.85),
    ("PydMobileNet-Concat-56-0.5", "56", "0.332M", "53M", 5.24, 15.67),
    ("PydMobileNet-Concat-56-0.75", "56", "0.489M", "79M", 4.72, 14.60),
]
_WIDTH_CODES = {"0.25": "025", "0.5": "050", "0.75": "075", "1": "100", "1.5": "150"}


def _pydmobilenet_name(label: str) -> str:
    """Table 3's label -> the registered name: "MobileNet-29-1.5" -> "pyd_mobilenet_29_150_cifar"."""
    if label.endswith("*"):  # the GluonCV ResNets
        return f"resnet{label[len('ResNet-') : -1]}_cifar"
    *kind, depth, alpha = label.split("-")
    prefix = {"ResNet": "pyd_resnet", "MobileNet": "pyd_mobilenet"}.get(kind[0], "pydmobilenet_" + kind[-1].lower())
    return f"{prefix}_{depth}_{_WIDTH_CODES[alpha]}_cifar"


PYDMOBILENET_TABLE_3_NAMES = {row[0]: _pydmobilenet_name(row[0]) for row in PYDMOBILENET_TABLE_3}


def test_pydmobilenet_table_3() -> None:
    assert PYDMOBILENET_TABLE_3_NAMES["MobileNet-29-1.5"] == "pyd_mobilenet_29_150_cifar"
    assert PYDMOBILENET_TABLE_3_NAMES["PydMobileNet-Concat-56-0.75"] == "pydmobilenet_concat_56_075_cifar"
    for label, _, params, flops, c10, c100 in PYDMOBILENET_TABLE_3:
        _check(PYDMOBILENET_TABLE_3_NAMES[label], params=params, madds=flops, cifar10_error=c10)
        if c100 is not None:
            _check(PYDMOBILENET_TABLE_3_NAMES[label], cifar100_error=c100)
        else:
            assert "cifar100_error" not in cn.model_card(PYDMOBILENET_TABLE_3_NAMES[label]).paper_metrics
    _covers(PYDMOBILENET, "Table 3", PYDMOBILENET_TABLE_3_NAMES, PYDMOBILENET_TABLE_3)


# PydMobileNet Table 5 (inference speed, batch 128): model, #params, FLOPs, GPU ms, CPU ms.
PYDMOBILENET_TABLE_5 = [
    ("ResNet-56-0.5", "0.435M", "60M", 75, 202),
    ("MobileNet-56-0.5", "0.151M", "23M", 76, 177),
    ("MobileNet-56-1", "0.283M", "43M", 107, 261),
    ("MobileNet-56-1.5", "0.416M", "63M", 162, 353),
    ("PydMobileNet-Add-56-0.25", "0.109M", "19M", 84, 208),
    ("PydMobileNet-Add-56-0.5", "0.200M", "36M", 127, 252),
    ("PydMobileNet-Add-56-0.75", "0.292M", "52M", 175, 308),
    ("PydMobileNet-Add-56-1", "0.382M", "69M", 221, 378),
    ("PydMobileNet-Concat-56-0.25", "0.175M", "28M", 92, 207),
    ("PydMobileNet-Concat-56-0.5", "0.332M", "53M", 150, 306),
    ("PydMobileNet-Concat-56-0.75", "0.489M", "79M", 207, 405),
]


def test_pydmobilenet_table_5() -> None:
    names = {row[0]: _pydmobilenet_name(row[0]) for row in PYDMOBILENET_TABLE_5}
    for label, params, flops, _, _ in PYDMOBILENET_TABLE_5:
        _check(names[label], params=params, madds=flops)
    _covers(PYDMOBILENET, "Table 5", names, PYDMOBILENET_TABLE_5)


# SeesawNet Tables 3 (CIFAR-10) and 4 (CIFAR-100), 8x8 final map: model, params, Multi-Adds, top-1.
SEESAWNET_TABLE_3 = [
    ("CondenseNet light-94", "0.33M", "122M", 95.00),
    ("IGCV3(0.5D)", "1.4M", "100M", 94.75),
    ("Seesaw-shareNet(v0 0.5D)", "1.4M", "104M", 94.99),
    ("Seesaw-shareNet(v1 0.5D)", "1.5M", "108M", 94.80),
    ("Seesaw-shuffleNet(0.5D)", "1.5M", "108M", 95.10),
    ("IGCV3(1.0D)", "2.2M", "166M", 95.01),
    ("Seesaw-shareNet(v0 1.0D)", "2.3M", "175M", 95.36),
    ("Seesaw-shareNet(v1 1.0D)", "2.4M", "181M", 95.20),
    ("Seesaw-shuffleNet(1.0D)", "2.4M", "181M", 95.28),
]
SEESAWNET_TABLE_4 = [
    ("CondenseNet light-94", "0.33M", "122M", 75.92),
    ("IGCV3(0.5D)", "1.5M", "100M", 77.65),
    ("Seesaw-shareNet(v0 0.5D)", "1.5M", "104M", 77.87),
    ("Seesaw-shareNet(v1 0.5D)", "1.6M", "108M", 77.84),
    ("Seesaw-shuffleNet(0.5D)", "1.6M", "108M", 77.82),
    ("IGCV3(1.0D)", "2.3M", "166M", 78.24),
    ("Seesaw-shareNet(v0 1.0D)", "2.4M", "175M", 78.84),
    ("Seesaw-shareNet(v1 1.0D)", "2.5M", "181M", 78.73),
    ("Seesaw-shuffleNet(1.0D)", "2.5M", "181M", 79.26),
]
SEESAWNET_CIFAR_NAMES = {
    "IGCV3(0.5D)": "igcv3_05d_cifar",
    "Seesaw-shareNet(v0 0.5D)": "seesaw_share_v0_05d_cifar",
    "Seesaw-shareNet(v1 0.5D)": "seesaw_share_v1_05d_cifar",
    "Seesaw-shuffleNet(0.5D)": "seesaw_shuffle_05d_cifar",
    "IGCV3(1.0D)": "igcv3_10d_cifar",
    "Seesaw-shareNet(v0 1.0D)": "seesaw_share_v0_10d_cifar",
    "Seesaw-shareNet(v1 1.0D)": "seesaw_share_v1_10d_cifar",
    "Seesaw-shuffleNet(1.0D)": "seesaw_shuffle_10d_cifar",
}


def test_seesawnet_table_3() -> None:
    rows = {row[0]: row for row in SEESAWNET_TABLE_3}
    for label, name in SEESAWNET_CIFAR_NAMES.items():
        _, params, madds, top1 = rows[label]
        _check(name, params=params, madds=madds, top1=top1)
    _covers(SEESAWNET, "Table 3", SEESAWNET_CIFAR_NAMES, SEESAWNET_TABLE_3)


def test_seesawnet_table_4() -> None:
    """The same networks with a 100-way head: the cards' fields hold Table 3's counts, their notes Table 4's."""
    rows = {row[0]: row for row in SEESAWNET_TABLE_4}
    for label, name in SEESAWNET_CIFAR_NAMES.items():
        _, params, madds, top1 = rows[label]
        _check(name, note=(f"CIFAR-100 (Table 4): {params} / {madds}",), cifar100_top1=top1)
    _covers(SEESAWNET, "Table 4", SEESAWNET_CIFAR_NAMES, SEESAWNET_TABLE_4)


# SeesawNet Table 5 (ImageNet): model, params, Multi-Adds, top-1.
SEESAWNET_TABLE_5 = [
    ("VGG-16", "-", "15,300M", 71.5),
    ("ResNet-18", "-", "1,818M", 69.8),
    ("Inception V1", "6.6M", "1,448M", 69.8),
    ("NASNet-B (N=4)", "5.3M", "488M", 72.8),
    ("NASNet-C (N=3)", "4.9M", "558M", 72.5),
    ("MobileNetV1", "4.2M", "575M", 70.6),
    ("ShuffleNet (1.5)", "3.4M", "292M", 71.5),
    ("CondenseNet (G=C=8)", "2.9M", "274M", 71.0),
    ("MobileNetV2(1.0)", "3.5M", "314M", 72.0),
    ("IGCV3(1.0D)", "3.5M", "318M", 72.2),
    ("Seesaw-shuffleNet(1.0D)", "3.6M", "361M", 72.9),
]
SEESAWNET_TABLE_5_FIELDS = {
    "ShuffleNet (1.5)": "shufflenet_g3_150",
    "CondenseNet (G=C=8)": "condensenet_74_g8c8",
    "IGCV3(1.0D)": "igcv3_10d",
    "Seesaw-shuffleNet(1.0D)": "seesaw_shuffle_10d",
}


def test_seesawnet_table_5() -> None:
    rows = {row[0]: row for row in SEESAWNET_TABLE_5}
    for label, name in SEESAWNET_TABLE_5_FIELDS.items():
        _, params, madds, top1 = rows[label]
        _check(name, params=params, madds=madds, top1=top1)
    # quotes of networks whose cards hold their own paper's numbers
    _check("mobilenetv1_100", params="4.2M", top1=70.6, note=("SeesawNet Table 5", "575M"))
    _check("mobilenetv2_100", top1=72.0, note=("SeesawNet Table 5", "3.5M / 314M"))
    names = {**SEESAWNET_TABLE_5_FIELDS, "MobileNetV1": "mobilenetv1_100", "MobileNetV2(1.0)": "mobilenetv2_100"}
    _covers(SEESAWNET, "Table 5", names, SEESAWNET_TABLE_5)


# SeesawNet Table 7 (CIFAR-100, 4x4 final map, expansion 3 for the IGCV3 and Seesaw rows): model, params,
# Multi-Adds, top-1.
SEESAWNET_TABLE_7 = [
    ("MobileNetV2(1.0)", "2.4M", "89M", 74.46),
    ("IGCV3(0.5D)", "1.0M", "30M", 75.75),
    ("Seesaw-shareNet(v1 0.5D)", "1.1M", "34M", 76.14),
]


def test_seesawnet_table_7() -> None:
    """Other configurations of registered cards: the notes hold the counts, IGCV3's and Seesaw's paper_metrics
    the top-1; MobileNetV2 (1.0) is ANTNets' CIFAR MobileNetV2, whose card holds ANTNets' numbers."""
    (_, mb_params, mb_madds, mb_top1), igcv3, share_v1 = SEESAWNET_TABLE_7
    _check("mobilenetv2_cifar", note=("SeesawNet Table 7", f"{mb_params} / {mb_madds} / {mb_top1}"))
    _check("igcv3_05d_cifar", note=(f"{igcv3[1]} / {igcv3[2]}",), cifar100_top1_final_map4_t3=igcv3[3])
    _check(
        "seesaw_share_v1_05d_cifar", note=(f"{share_v1[1]} / {share_v1[2]}",), cifar100_top1_final_map4_t3=share_v1[3]
    )
    names = {"MobileNetV2(1.0)": "mobilenetv2_cifar", "IGCV3(0.5D)": "igcv3_05d_cifar",
             "Seesaw-shareNet(v1 0.5D)": "seesaw_share_v1_05d_cifar"}  # fmt: skip
    _covers(SEESAWNET, "Table 7", names, SEESAWNET_TABLE_7)


# ChannelNets Table 1 (ImageNet): model, top-1 (a fraction), params, FLOPs, with the paper's lower-case "m".
CHANNELNETS_TABLE_1 = [
    ("GoogleNet", 0.698, "6.8m", "1550m"),
    ("VGG16", 0.715, "128m", "15300m"),
    ("AlexNet", 0.572, "60m", "720m"),
    ("SqueezeNet", 0.575, "1.3m", "833m"),
    ("1.0 MobileNet", 0.706, "4.2m", "569m"),
    ("ShuffleNet 2x", 0.709, "5.3m", "524m"),
    ("ChannelNet-v1", 0.705, "3.7m", "407m"),
]


def test_channelnets_table_1() -> None:
    rows = {row[0]: row for row in CHANNELNETS_TABLE_1}
    for name in ("channelnet_v1", "channelnet_v1_code"):  # the paper-text and the official-code readings
        _, top1, params, flops = rows["ChannelNet-v1"]
        _check(name, params=params, madds=flops, top1=_percent(top1))
    _, top1, params, flops = rows["1.0 MobileNet"]
    _check("mobilenetv1_100", params=params, madds=flops, top1=_percent(top1))
    # quotes that differ from the cards' own papers: in the notes
    _, top1, params, flops = rows["SqueezeNet"]
    _check("squeezenet_10", madds=flops, top1=_percent(top1), note=("ChannelNets Table 1", params.upper()))
    assert not _as_printed(cn.model_card("squeezenet_10").paper_params, params)  # 1,248,424 is 1.2M
    _, top1, params, flops = rows["ShuffleNet 2x"]
    _check("shufflenet_g3_200", madds=flops, note=("ChannelNets Table 1", params.upper(), f"{_percent(top1)}%"))
    names = {
        "ChannelNet-v1": ("channelnet_v1", "channelnet_v1_code"),
        "1.0 MobileNet": "mobilenetv1_100",
        "SqueezeNet": "squeezenet_10",
        "ShuffleNet 2x": "shufflenet_g3_200",
    }
    _covers(CHANNELNETS, "Table 1", names, CHANNELNETS_TABLE_1)


# ChannelNets Table 2 (ImageNet, width multipliers): model, top-1 (a fraction), params.
CHANNELNETS_TABLE_2 = [
    ("0.75 MobileNet", 0.684, "2.6m"),
    ("0.75 ChannelNet-v1", 0.678, "2.3m"),
    ("ChannelNet-v2", 0.695, "2.7m"),
    ("0.5 MobileNet", 0.637, "1.3m"),
    ("0.5 ChannelNet-v1", 0.627, "1.2m"),
    ("ChannelNet-v3", 0.667, "1.7m"),
]
CHANNELNETS_TABLE_2_NAMES = {
    "0.75 MobileNet": "mobilenetv1_075",
    "0.75 ChannelNet-v1": "channelnet_v1_075",
    "ChannelNet-v2": "channelnet_v2",
    "0.5 MobileNet": "mobilenetv1_050",
    "0.5 ChannelNet-v1": "channelnet_v1_050",
    "ChannelNet-v3": "channelnet_v3",
}


def test_channelnets_table_2() -> None:
    for label, top1, params in CHANNELNETS_TABLE_2:
        _check(CHANNELNETS_TABLE_2_NAMES[label], params=params, top1=_percent(top1))
    _covers(CHANNELNETS, "Table 2", CHANNELNETS_TABLE_2_NAMES, CHANNELNETS_TABLE_2)


# ChannelNets Table 3 (ablation of the group channel-wise convolutions): model, top-1 (a fraction), params.
CHANNELNETS_TABLE_3 = [("ChannelNet-v1(-)", 0.697, "3.7m"), ("ChannelNet-v1", 0.705, "3.7m")]
CHANNELNETS_TABLE_3_NAMES = {"ChannelNet-v1(-)": "channelnet_v1_minus", "ChannelNet-v1": "channelnet_v1"}


def test_channelnets_table_3() -> None:
    for label, top1, params in CHANNELNETS_TABLE_3:
        _check(CHANNELNETS_TABLE_3_NAMES[label], params=params, top1=_percent(top1))
    _covers(CHANNELNETS, "Table 3", CHANNELNETS_TABLE_3_NAMES, CHANNELNETS_TABLE_3)


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
