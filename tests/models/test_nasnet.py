"""NASNet-A mobile: cells of Fig. 4, the stacking of Fig. 2 with N=4 and 1056 penultimate filters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import compactnets as cn
from compactnets.models.nasnet import (
    NASNET_A_MOBILE,
    FactorizedReduction,
    NASNetCell,
    nasnet_operation,
)


def _meta_nasnet() -> nn.Module:
    with torch.device("meta"):
        return cn.create_model("nasnet_a_mobile")


def test_cell_stack_of_figure_2() -> None:
    model = _meta_nasnet()
    cells = list(model.features.cells)
    assert len(cells) == 2 + 3 * 4 + 2  # two stem cells, 3 x N normal cells, two reduction cells
    # widths: reduction cells concatenate 4 states, normal cells 6
    assert [c.out_chs for c in cells] == [44, 88, *[264] * 4, 352, *[528] * 4, 704, *[1056] * 4]
    assert NASNET_A_MOBILE.penultimate_filters == model.num_features == 1056
    reduced_prev = [i for i, c in enumerate(cells) if isinstance(c.preprocess_prev, FactorizedReduction)]
    assert reduced_prev == [1, 2, 7, 12]  # the cell after each reduction sees h_{i-1} at twice the resolution
    assert isinstance(cells[0].preprocess_prev, nn.Identity)  # first stem cell: h_{i-1} is the raw stem output
    features = model.forward_features(torch.zeros(1, 3, 224, 224, device="meta"))
    assert features.shape == (1, 1056, 7, 7)  # 224 -> 111 (VALID conv) -> 56 -> 28 -> 14 -> 7


def test_reduction_cell_strides_only_operations_on_its_inputs() -> None:
    cell = _meta_nasnet().features.cells[6]  # first reduction cell after the stem
    strides = []
    for ops in (cell.left, cell.right):
        for op in ops:
            convs = [m for m in op.modules() if isinstance(m, nn.Conv2d)]
            pools = [m for m in op.modules() if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d))]
            first = convs[0] if convs else (pools[0] if pools else None)
            stride = first.stride if first is not None else 1
            strides.append(stride[0] if isinstance(stride, tuple) else stride)
    # left ops on states 0, 0, 0, 3, 2 and right ops on 1, 1, 1, 2, 0 (Fig. 4 right)
    assert strides == [2, 2, 2, 1, 1, 2, 2, 2, 1, 2]


def test_separable_operation_is_relu_sep_bn_twice() -> None:
    op = nasnet_operation("sep5x5", 8, 16, stride=2)
    assert len(op) == 2 and op[0].dw.conv.kernel_size == (5, 5) and op[0].dw.conv.stride == (2, 2)
    assert op[0].pw.conv.out_channels == 16 and op[1].dw.conv.stride == (1, 1)
    assert isinstance(nasnet_operation("identity", 8, 8, 1), nn.Identity)
    assert not nasnet_operation("avg3x3", 8, 8, 1).count_include_pad  # TF 'SAME' averages
    with pytest.raises(ValueError, match="unknown NASNet operation"):
        nasnet_operation("conv3x3", 8, 8, 1)


def test_cell_does_not_modify_its_inputs() -> None:
    cell = NASNetCell([(0, "sep3x3", 1, "identity"), (2, "avg3x3", 0, "max3x3")], (1, 2, 3), 8, 8, 4, reduction=False)
    x, prev = torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    x0, prev0 = x.clone(), prev.clone()
    out = cell(x, prev)
    assert out.shape == (2, 12, 6, 6) and torch.equal(x, x0) and torch.equal(prev, prev0)


def test_factorized_reduction_handles_odd_sizes() -> None:
    reduce = FactorizedReduction(6, 10)
    assert reduce(torch.randn(1, 6, 111, 111)).shape == (1, 10, 56, 56)
    assert reduce(torch.randn(1, 6, 56, 56)).shape == (1, 10, 28, 28)
