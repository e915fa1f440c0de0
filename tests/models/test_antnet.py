"""ANTNet specifics: block structure from Table 1/2 and the learned e-ANTBlock weights (Eq. 7-8)."""

from __future__ import annotations

import torch

import compactnets as cn
from compactnets.models.antnet import EnsembleANTBlock


def test_antblock_structure_follows_table_1() -> None:
    model = cn.create_model("antnet_g2")
    ant1, ant2 = model.features[1], model.features[2]
    assert "expand" not in dict(ant1.branch.named_children())  # t = 1: no expansion conv
    assert ant1.branch.project.conv.groups == 1  # ant1 keeps g = 1
    assert ant2.branch.project.conv.groups == 2
    assert ant2.branch.attn.channels == 96 and ant2.branch.attn.hidden_chs == 96 // 8
    assert not ant2.use_residual and model.features[3].use_residual


def test_ensemble_weights_are_learned() -> None:
    block = EnsembleANTBlock(16, 16, 1, 6, reduction=8)
    torch.testing.assert_close(block.branch_weights(), torch.tensor([0.5, 0.5]))
    x = torch.randn(2, 16, 8, 8)
    block(x).square().mean().backward()
    assert block.branch_logits.grad is not None and block.branch_logits.grad.abs().sum() > 0
    # with lambda pushed to one branch, the block equals that branch plus the shortcut
    block.eval()
    with torch.no_grad():
        block.branch_logits.copy_(torch.tensor([30.0, -30.0]))
        torch.testing.assert_close(block(x), x + block.branches[0](x))


def test_ablation_attention_sites() -> None:
    c_ant = cn.create_model("c_antnet_cifar").features[2].branch
    ant_c = cn.create_model("antnet_c_cifar").features[2].branch
    names = list(dict(c_ant.named_children()))
    assert names[0] == "attn_input" and c_ant.attn_input.channels == 16
    assert list(dict(ant_c.named_children()))[-1] == "attn_project" and ant_c.attn_project.channels == 24
