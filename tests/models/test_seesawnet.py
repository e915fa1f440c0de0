"""SeesawNet and IGCV3: the uneven group conv, block structure against the paper and the author's code, and
the reference counts of ARCHITECTURES.md 4.5 that the cards do not hold (CIFAR-100, Tables 6/7)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import compactnets as cn
from compactnets.layers import ConvNormAct, InvertedResidual, UnevenGroupConv, channel_shuffle, split_channels
from compactnets.models.seesawnet import igcv3, seesaw_block, seesawnet
from compactnets.registry import matches_printed

PARAMS_RTOL, MACS_RTOL = 0.005, 0.01  # MODELS.md tolerances, as in test_zoo


def _blocks(model: nn.Module) -> list[InvertedResidual]:
    return [m for m in model.features if isinstance(m, InvertedResidual)]


def _meta_counts(build, input_size=(3, 32, 32), **kwargs) -> cn.ProfileResult:
    with torch.device("meta"):
        model = build(**kwargs)
    return cn.profile(model, input_size)


# ---------------------------------------------------------------------------- the layer
@pytest.mark.parametrize(
    ("channels", "ratios", "parts"),
    [(96, (1, 3), (24, 72)), (16, (1, 3), (4, 12)), (32, (1, 2), (10, 22)), (32, (2, 1), (21, 11)),
     (96, (3, 1), (72, 24)), (40, (1, 1, 2), (10, 10, 20))],
)  # fmt: skip
def test_split_channels_follows_the_code(channels: int, ratios: tuple[int, ...], parts: tuple[int, ...]) -> None:
    assert split_channels(channels, ratios) == parts
    assert sum(parts) == channels


def test_split_channels_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match="use more channels or fewer groups"):
        split_channels(2, (1, 3))
    with pytest.raises(ValueError, match="positive integers"):
        split_channels(16, (0, 3))
    with pytest.raises(ValueError, match="positive integers"):
        split_channels(16, (1.5, 3))  # type: ignore[arg-type]


@pytest.mark.parametrize("splits", [(1, 3), (1, 2), (3, 1), (2, 1, 1)])
def test_uneven_group_conv_is_a_block_diagonal_dense_conv(splits: tuple[int, ...]) -> None:
    conv = UnevenGroupConv(24, 48, splits)
    # the dense weight built here, independently of block_diagonal_weight()
    dense_weight = torch.block_diag(*(c.weight[:, :, 0, 0] for c in conv.convs))[:, :, None, None]
    assert dense_weight.shape == (48, 24, 1, 1)
    x = torch.randn(2, 24, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), nn.functional.conv2d(x, dense_weight), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(conv.block_diagonal_weight(), dense_weight)
    # off-diagonal blocks are zero: channel j of the output sees only its own group's inputs
    in_parts, out_parts = split_channels(24, splits), split_channels(48, splits)
    assert (conv.in_splits, conv.out_splits) == (in_parts, out_parts)
    assert int((dense_weight != 0).sum()) == sum(i * o for i, o in zip(in_parts, out_parts, strict=True))


def test_uneven_group_conv_counts_exactly() -> None:
    conv = UnevenGroupConv(32, 192, (1, 3))  # 8 -> 48 and 24 -> 144
    result = cn.profile(conv, (32, 7, 7))
    assert result.params == 8 * 48 + 24 * 144
    assert result.macs == (8 * 48 + 24 * 144) * 7 * 7


def test_network_macs_agree_with_torch_flop_counter() -> None:
    model = cn.create_model("seesaw_share_v1_05d_cifar").eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    assert cn.profile(model).macs == counter.get_total_flops() // 2  # 2 FLOPs per MAC


def test_equal_ratios_are_an_ordinary_grouped_conv() -> None:
    uneven = ConvNormAct(16, 32, 1, groups=(1, 1), act=None).eval()
    even = ConvNormAct(16, 32, 1, groups=2, act=None).eval()
    assert isinstance(uneven.conv, UnevenGroupConv) and even.conv.groups == 2
    with torch.no_grad():
        even.conv.weight.copy_(torch.cat([c.weight for c in uneven.conv.convs]))
        x = torch.randn(2, 16, 4, 4)
        torch.testing.assert_close(uneven(x), even(x))


# ---------------------------------------------------------------------------- block structure
def test_seesaw_shuffle_blocks_follow_the_code() -> None:
    model = cn.create_model("seesaw_shuffle_10d")
    blocks = _blocks(model)
    assert len(blocks) == 1 + 4 + 6 + 8 + 6 + 6 + 1  # Table 2 repeats, 1.0D
    first = blocks[0].branch  # t = 1, 32 -> 16: the uneven expansion is kept (8 -> 8, 24 -> 24)
    assert list(dict(first.named_children())) == ["expand", "shuffle", "dw", "project"]
    assert (first.expand.conv.in_splits, first.expand.conv.out_splits) == ((8, 24), (8, 24))
    assert (first.project.conv.in_splits, first.project.conv.out_splits) == ((8, 24), (4, 12))
    assert "act" not in dict(first.expand.named_children())  # no ReLU after the expansion
    assert isinstance(first.dw.act, nn.ReLU6) and "act" not in dict(first.project.named_children())
    assert first.shuffle.groups == 2
    even = [b for b in blocks if not isinstance(b.branch.expand.conv, UnevenGroupConv)]
    # even (IGCV3) blocks exactly where the input has >= 160 channels: blocks 2-6 of the 160 row, the 320 block
    assert even == [b for b in blocks if b.in_chs >= 160] and len(even) == 6
    assert [b.out_chs for b in even] == [160] * 5 + [320]
    for block in blocks:
        names = list(dict(block.branch.named_children()))
        assert names == ["expand", "shuffle", "dw", "project"]  # one shuffle, no second permutation
        if block in even:
            assert block.branch.expand.conv.groups == 2 and block.branch.project.conv.groups == 2
        else:
            assert block.branch.expand.conv.splits == (1, 3) and block.branch.project.conv.splits == (1, 3)


def test_seesaw_shortcut_is_not_permuted() -> None:
    block = _blocks(cn.create_model("seesaw_shuffle_05d_cifar"))[2].eval()  # 24 -> 24, stride 1
    assert block.use_residual
    x = torch.randn(2, 24, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x + block.branch(x))


@pytest.mark.parametrize(
    ("name", "splits", "project_splits", "shuffled"),
    [("seesaw_share_v0_05d_cifar", (1, 2), (2, 1), False), ("seesaw_share_v1_05d_cifar", (1, 3), (3, 1), False),
     ("seesaw_share_v2_05d_cifar", (1, 2), (2, 1), True), ("seesaw_shuffle_05d_cifar", (1, 3), (1, 3), True)],
)  # fmt: skip
def test_share_variants(name: str, splits: tuple, project_splits: tuple, shuffled: bool) -> None:
    blocks = _blocks(cn.create_model(name))
    assert len(blocks) == 1 + 2 + 3 + 4 + 3 + 3 + 1  # 0.5D: MobileNetV2's repeats
    for block in blocks:
        assert ("shuffle" in dict(block.branch.named_children())) == shuffled
        if block.in_chs < 160:
            assert block.branch.expand.conv.splits == splits
            assert block.branch.project.conv.splits == project_splits
    mirrored = _blocks(cn.create_model("seesaw_share_v1_05d_cifar"))[3]  # 24 -> 32, t = 6
    assert (mirrored.in_chs, mirrored.mid_chs, mirrored.out_chs) == (24, 144, 32)
    assert mirrored.branch.expand.conv.out_splits == (36, 108) and mirrored.branch.project.conv.in_splits == (108, 36)
    assert mirrored.branch.project.conv.out_splits == (24, 8)


def test_igcv3_blocks() -> None:
    cifar, imagenet = _blocks(cn.create_model("igcv3_10d_cifar")), _blocks(cn.create_model("igcv3_10d"))
    for blocks in (cifar, imagenet):
        assert len(blocks) == 32
        for block in blocks:
            assert block.branch.expand.conv.groups == 2 and block.branch.project.conv.groups == 2
            assert "act" not in dict(block.branch.expand.named_children())
            assert block.branch.shuffle.groups == 2
    assert blocks[0].branch.expand.conv.in_channels == 32 == blocks[0].mid_chs  # grouped 1x1 kept at t = 1
    # the second permutation: in the CIFAR code, commented out in the ImageNet symbol
    assert all(b.branch.unshuffle.groups == b.out_chs // 2 for b in cifar)
    assert not any("unshuffle" in dict(b.branch.named_children()) for b in imagenet)
    x = torch.randn(1, 24, 2, 2)
    torch.testing.assert_close(channel_shuffle(channel_shuffle(x, 2), 12), x)  # it undoes the shuffle
    unpermuted = _blocks(igcv3("0.5D", cifar=True, permute=False))  # Table 6, "permute N"
    assert not any({"shuffle", "unshuffle"} & set(dict(b.branch.named_children())) for b in unpermuted)


@pytest.mark.parametrize(("final_map", "side"), [(None, 8), (8, 8), (4, 4)])
def test_cifar_strides_and_head(final_map: int | None, side: int) -> None:
    model = cn.create_model("seesaw_shuffle_05d_cifar", final_map=final_map).eval()
    assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 1280, side, side)
    assert model.features[0].stride == 1
    assert isinstance(model.head.dropout, nn.Dropout) and model.head.dropout.p == 0.5
    assert isinstance(cn.create_model("seesaw_shuffle_05d").head.dropout, nn.Identity)  # ImageNet: none


def test_bad_options_name_the_fix() -> None:
    with pytest.raises(ValueError, match=r"final_map must be 8 \(Tables 3/4\) or 4"):
        cn.create_model("igcv3_05d_cifar", final_map=2)
    with pytest.raises(ValueError, match="use it with a \\*_cifar name"):
        cn.create_model("igcv3_10d", final_map=4)
    with pytest.raises(ValueError, match="choose one of: shuffle, share_v0"):
        seesawnet("share_v3")


def test_init_is_the_released_codes() -> None:
    """Conv N(0, sqrt(2 / (k^2 C_out))) per nn.Conv2d (each uneven group its own), BN 1/0, linear N(0, 0.01)."""
    model = cn.create_model("seesaw_shuffle_10d")
    checked = 0
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.weight.numel() >= 10_000:
            k = module.kernel_size[0] * module.kernel_size[1]
            expected = (2.0 / (k * module.out_channels)) ** 0.5
            assert module.weight.std().item() == pytest.approx(expected, rel=0.05)
            checked += 1
        elif isinstance(module, nn.BatchNorm2d):
            assert bool((module.weight == 1).all()) and bool((module.bias == 0).all())
    assert checked > 20
    assert model.head.fc.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert bool((model.head.fc.bias == 0).all())


# ---------------------------------------------------------------------------- counts not on the cards
# ARCHITECTURES.md 4.5: (builder kwargs, input, reference params, reference MACs, paper params, paper MAdds)
REFERENCE_COUNTS = {
    # Table 4, CIFAR-100 (8x8 final map)
    "igcv3 0.5D C100": (igcv3, dict(depth="0.5D", cifar=True, num_classes=100), 1.495e6, 100.5e6, "1.5M", "100M"),
    "share v0 0.5D C100": (seesawnet, dict(variant="share_v0", depth="0.5D", cifar=True, num_classes=100),
                           1.531e6, 104.1e6, "1.5M", "104M"),
    "share v1 0.5D C100": (seesawnet, dict(variant="share_v1", depth="0.5D", cifar=True, num_classes=100),
                           1.575e6, 108.3e6, "1.6M", "108M"),
    "shuffle 0.5D C100": (seesawnet, dict(variant="shuffle", depth="0.5D", cifar=True, num_classes=100),
                          1.575e6, 108.3e6, "1.6M", "108M"),
    "igcv3 1.0D C100": (igcv3, dict(depth="1.0D", cifar=True, num_classes=100), 2.339e6, 166.2e6, "2.3M", "166M"),
    "share v0 1.0D C100": (seesawnet, dict(variant="share_v0", depth="1.0D", cifar=True, num_classes=100),
                           2.408e6, 173.1e6, "2.4M", None),  # paper 175M: not reproduced
    "share v1 1.0D C100": (seesawnet, dict(variant="share_v1", depth="1.0D", cifar=True, num_classes=100),
                           2.491e6, 181.2e6, "2.5M", "181M"),
    "shuffle 1.0D C100": (seesawnet, dict(variant="shuffle", depth="1.0D", cifar=True, num_classes=100),
                          2.491e6, 181.2e6, "2.5M", "181M"),
    # Table 6, CIFAR-10, 4x4 final map, t = 6
    "igcv3 0.5D 4x4": (igcv3, dict(depth="0.5D", cifar=True, final_map=4, num_classes=10), 1.380e6, 51.2e6,
                       None, "51M"),
    "igcv3 0.5D 4x4 no permute": (igcv3, dict(depth="0.5D", cifar=True, final_map=4, permute=False,
                                              num_classes=10), 1.380e6, 51.2e6, None, "51M"),
    "share v1 0.5D 4x4": (seesawnet, dict(variant="share_v1", depth="0.5D", cifar=True, final_map=4,
                                          num_classes=10), 1.460e6, 58.5e6, None, None),  # printed 59M
    # Table 7, CIFAR-100, 4x4 final map, t = 3
    "igcv3 0.5D 4x4 t3 C100": (igcv3, dict(depth="0.5D", cifar=True, final_map=4, expansion=3, num_classes=100),
                               1.020e6, 30.0e6, "1.0M", "30M"),
    "share v1 0.5D 4x4 t3 C100": (seesawnet, dict(variant="share_v1", depth="0.5D", cifar=True, final_map=4,
                                                  expansion=3, num_classes=100), 1.060e6, 33.7e6, "1.1M", "34M"),
    # ImageNet IGCV3 0.5D (not a paper row; a reference build)
    "igcv3 0.5D ImageNet": (igcv3, dict(depth="0.5D"), 2.648e6, 183.3e6, None, None),
}  # fmt: skip


@pytest.mark.parametrize("key", list(REFERENCE_COUNTS))
def test_reference_counts(key: str) -> None:
    build, kwargs, ref_params, ref_macs, paper_params, paper_madds = REFERENCE_COUNTS[key]
    size = (3, 224, 224) if not kwargs.get("cifar") else (3, 32, 32)
    result = _meta_counts(build, size, **kwargs)
    assert result.params == pytest.approx(ref_params, rel=PARAMS_RTOL)
    assert result.macs == pytest.approx(ref_macs, rel=MACS_RTOL)
    if paper_params:
        assert matches_printed(result.params, paper_params), f"{key}: {result.params:,} vs {paper_params}"
    if paper_madds:
        assert matches_printed(result.macs, paper_madds), f"{key}: {result.macs:,} vs {paper_madds}"


def test_table7_expansion_keeps_the_t1_row() -> None:
    blocks = _blocks(cn.create_model("igcv3_05d_cifar", final_map=4, expansion=3))
    assert [b.mid_chs / b.in_chs for b in blocks[:2]] == [1, 3]


# ---------------------------------------------------------------------------- export
@pytest.mark.slow  # the first torch.export in a process costs ~5 s of tracing setup
def test_uneven_blocks_export() -> None:
    blocks = nn.Sequential(
        seesaw_block(16, 24, 2, 6), seesaw_block(24, 24, 1, 6, splits=(1, 3), project_splits=(3, 1), shuffle=False)
    ).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        expected = blocks(x)
        program = torch.export.export(blocks, (x,))
        torch.testing.assert_close(program.module()(x), expected, rtol=1e-4, atol=1e-5)


def test_channels_last_gives_the_same_logits() -> None:
    model = cn.create_model("seesaw_shuffle_05d_cifar").eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(images)
        got = model.to(memory_format=torch.channels_last)(images.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_channel_shuffle_keeps_channels_last_forward_and_backward() -> None:
    """A shuffle that returned NCHW from a channels_last input sent BatchNorm's backward to a slow mixed-layout
    path (IGCV3-0.5D trained about 1.8x slower); the values must not depend on the layout."""
    x = torch.randn(2, 12, 3, 5)
    expected = x.view(2, 3, 4, 3, 5).transpose(1, 2).reshape(2, 12, 3, 5)  # ShuffleNet Sec. 3.1, literally
    nhwc = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    out = channel_shuffle(nhwc, 3)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(channel_shuffle(x, 3), expected, rtol=0, atol=0)
    out.backward(torch.randn_like(out).contiguous(memory_format=torch.channels_last))
    assert nhwc.grad is not None and nhwc.grad.is_contiguous(memory_format=torch.channels_last)
