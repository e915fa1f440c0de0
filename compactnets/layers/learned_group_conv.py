"""Learned group convolution (CondenseNet, Huang et al. 2018, Sec. 3.1) and its condensed inference form.

Training: a 1x1 conv whose output channels form ``G`` groups, each group reading every input channel
through a 0/1 mask. Training runs ``C - 1`` condensing stages over the first half of the schedule (``C``
is the condensation factor); at the end of each, every group drops ``R / C`` of the ``R`` input channels,
those of its remaining ones whose weights in the group have the smallest L1 norm. A group-lasso term (Sec. 3.1, "Group
Lasso") pushes whole (group, input channel) columns towards zero while condensing. The second half
trains with the final masks, where each group reads ``R / C`` input channels.

Inference (Fig. 1, right: "Index"): the mask becomes an index: ``index_select`` gathers each group's input
channels (a channel several groups use is gathered several times), then a standard 1x1 group conv.
:meth:`LearnedGroupConv.fuse_for_inference` does the conversion exactly, at any stage.

The CondenseNet classifier is condensed the same way with ``G = 1``: :class:`LearnedLinear` keeps the
input features with the largest weights (50% in the official code).

Speed (PERFORMANCE.md): ``index_select`` along channels of a ``channels_last`` tensor is about 3x slower
than on NCHW; condensed CondenseNets run faster in NCHW on this CPU.

Training schedule: call :func:`update_condensation` with the training progress (0 -> 1) before each step
and add ``lambda * group_lasso_loss(model)`` to the loss; :func:`condense_model` then converts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activations import ActLayer, create_act

LASSO_EPS = 1e-6
"""Floor under the squared group norms before the square root (the official code's), so the lasso's
gradient stays finite for columns that are already zero."""


def condensing_stage(progress: float, condense_factor: int) -> int:
    """The stage reached at training ``progress`` (0 -> 1): stages 0 .. C-2 split the first half of
    training evenly (each ends with a pruning step); stage C-1 (optimisation) is the second half."""
    if condense_factor <= 1:
        return 0
    return min(condense_factor - 1, int(2 * progress * (condense_factor - 1)))


class LearnedGroupConv(nn.Module):
    """BN -> ReLU -> 1x1 conv with ``groups`` groups whose input channels are learned (Sec. 3.1).

    ``mask[g, j] == 1`` while input channel ``j`` feeds group ``g`` (output channels
    ``g * out / G .. (g + 1) * out / G - 1``). Each pruning step drops ``in_chs // condense_factor``
    input channels per group, so every group always keeps the same number and the conversion to a
    group conv is exact. ``stage`` counts the pruning steps taken.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        groups: int,
        condense_factor: int | None = None,
        act: str | ActLayer = "relu",
    ) -> None:
        super().__init__()
        condense_factor = groups if condense_factor is None else condense_factor
        if in_chs % condense_factor:
            raise ValueError(
                f"LearnedGroupConv: {in_chs} input channels do not split by the condensation factor "
                f"{condense_factor}; choose a growth rate / stem width that keeps them divisible"
            )
        if out_chs % groups:
            raise ValueError(f"LearnedGroupConv: {out_chs} output channels do not split into {groups} groups")
        self.in_chs, self.out_chs, self.groups, self.condense_factor = in_chs, out_chs, groups, condense_factor
        self.act_spec = act
        self.norm = nn.BatchNorm2d(in_chs)
        self.act = create_act(act)
        self.conv = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.register_buffer("mask", torch.ones(groups, in_chs))
        self.register_buffer("stage", torch.zeros((), dtype=torch.long))

    def masked_weight(self) -> torch.Tensor:
        """The conv weight with the pruned (group, input channel) connections zeroed."""
        rows = self.mask.repeat_interleave(self.out_chs // self.groups, dim=0)
        return self.conv.weight * rows[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.act(self.norm(x)), self.masked_weight())

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The dense masked 1x1 conv it executes (profiler protocol; ``self.conv`` is not called)."""
        return {"macs": output.numel() * self.in_chs}

    def _group_columns(self, weight: torch.Tensor) -> torch.Tensor:
        """(out, in, 1, 1) -> (G, out / G, in): the weights each group applies to each input channel."""
        return weight.flatten(1).view(self.groups, self.out_chs // self.groups, self.in_chs)

    @torch.no_grad()
    def prune_step(self) -> None:
        """End of a condensing stage: every group drops its ``R / C`` least important remaining input
        channels, importance being the L1 norm of the group's weights on that channel (Sec. 3.1)."""
        if int(self.stage) >= self.condense_factor - 1:
            raise RuntimeError(f"all {self.condense_factor - 1} condensing stages are done; nothing left to prune")
        importance = self._group_columns(self.masked_weight().abs()).sum(1)  # (G, in)
        importance = importance.masked_fill(self.mask == 0, float("inf"))  # never re-drop a pruned one
        drop = importance.argsort(dim=1, stable=True)[:, : self.in_chs // self.condense_factor]
        self.mask.scatter_(1, drop, 0.0)
        self.stage += 1

    def update(self, progress: float) -> None:
        """Take the pruning steps that ``progress`` (0 -> 1 over training) has reached."""
        while int(self.stage) < condensing_stage(progress, self.condense_factor):
            self.prune_step()

    def group_lasso(self) -> torch.Tensor:
        """``sum_g sum_j sqrt(sum_{i in g} F_ij^2)`` over the kept weights (Sec. 3.1, "Group Lasso"),
        applied while condensing only (zero once the final stage is reached), as in the official code."""
        if int(self.stage) >= self.condense_factor - 1:
            return self.conv.weight.new_zeros(())
        squares = self._group_columns(self.masked_weight().pow(2)).sum(1)
        return squares.clamp_min(LASSO_EPS).sqrt().sum()

    def kept_index(self) -> torch.Tensor:
        """The input channels of each group, group after group (ascending within a group)."""
        kept = self.mask.sum(1)
        if not bool((kept == kept[0]).all()):
            raise ValueError(
                f"groups keep different numbers of input channels ({kept.int().tolist()}); prune with "
                "update()/prune_step(), which drop the same number per group, before converting"
            )
        return torch.cat([row.nonzero().flatten() for row in self.mask])

    @torch.no_grad()
    def fuse_for_inference(self) -> CondensedGroupConv:
        """The equivalent :class:`CondensedGroupConv` (same outputs in eval mode, at any stage)."""
        index = self.kept_index()
        kept = index.numel() // self.groups
        weight = self._group_columns(self.conv.weight)  # (G, out / G, in)
        columns = index.view(self.groups, 1, kept).expand(-1, self.out_chs // self.groups, -1)
        condensed = CondensedGroupConv(self.in_chs, self.out_chs, self.groups, kept, self.act_spec)
        condensed.to(device=self.conv.weight.device, dtype=self.conv.weight.dtype)
        condensed.index.copy_(index)
        condensed.conv.weight.copy_(weight.gather(2, columns).reshape(self.out_chs, kept, 1, 1))
        _copy_norm(self.norm, condensed.norm, index)
        return condensed.train(self.training)

    def extra_repr(self) -> str:
        return (
            f"{self.in_chs}, {self.out_chs}, groups={self.groups}, condense_factor={self.condense_factor}, "
            f"stage={int(self.stage)}"
        )


class CondensedGroupConv(nn.Module):
    """``index_select`` -> BN -> ReLU -> 1x1 group conv: a learned group conv after condensation
    (Sec. 3.1, Fig. 1 right). ``index`` lists each group's ``kept`` input channels, group after group; a
    freshly built one reads channels ``0, 1, ...`` in order until trained weights are converted in."""

    def __init__(self, in_chs: int, out_chs: int, groups: int, kept: int, act: str | ActLayer = "relu") -> None:
        super().__init__()
        if out_chs % groups:
            raise ValueError(f"CondensedGroupConv: {out_chs} output channels do not split into {groups} groups")
        self.in_chs, self.out_chs, self.groups, self.kept = in_chs, out_chs, groups, kept
        self.register_buffer("index", torch.arange(groups * kept) % in_chs)
        self.norm = nn.BatchNorm2d(groups * kept)
        self.act = create_act(act)
        self.conv = nn.Conv2d(groups * kept, out_chs, 1, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.act(self.norm(x.index_select(1, self.index))))

    def extra_repr(self) -> str:
        return f"{self.in_chs}, {self.out_chs}, groups={self.groups}, kept={self.kept} per group"


class LearnedLinear(nn.Module):
    """A linear layer that keeps ``keep`` of its input features, those whose weight columns have the
    largest L1 norm, chosen once training reaches ``at_progress`` (CondenseNet's classifier).

    The official code drops 50% of the classifier's inputs when it converts a trained model, with no
    training after; choosing them at the start of the optimisation stage (progress 0.5) lets the rest
    of training adapt and keeps the conversion exact.
    """

    def __init__(self, in_features: int, out_features: int, keep: float = 0.5, at_progress: float = 0.5) -> None:
        super().__init__()
        if not 0 < keep <= 1:
            raise ValueError(f"keep is the fraction of input features kept, in (0, 1]; got {keep}")
        self.in_features, self.out_features, self.keep, self.at_progress = in_features, out_features, keep, at_progress
        self.linear = nn.Linear(in_features, out_features)
        self.register_buffer("mask", torch.ones(in_features))
        self.register_buffer("condensed", torch.zeros((), dtype=torch.bool))

    @property
    def kept_features(self) -> int:
        return int(self.in_features * self.keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.linear.weight * self.mask, self.linear.bias)

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The dense masked product it executes (profiler protocol)."""
        return {"macs": output.numel() * self.in_features}

    @torch.no_grad()
    def update(self, progress: float) -> None:
        """Drop the weakest input features once ``progress`` reaches ``at_progress``."""
        if progress >= self.at_progress and not bool(self.condensed):
            importance = self.linear.weight.abs().sum(0)
            drop = importance.argsort(stable=True)[: self.in_features - self.kept_features]
            self.mask[drop] = 0.0
            self.condensed.fill_(True)

    @torch.no_grad()
    def fuse_for_inference(self) -> CondensedLinear:
        """The equivalent :class:`CondensedLinear` (exact once condensed; before, it keeps every feature)."""
        index = self.mask.nonzero().flatten()
        condensed = CondensedLinear(self.in_features, self.out_features, index.numel())
        condensed.to(device=self.linear.weight.device, dtype=self.linear.weight.dtype)
        condensed.index.copy_(index)
        condensed.linear.weight.copy_(self.linear.weight[:, index])
        condensed.linear.bias.copy_(self.linear.bias)
        return condensed.train(self.training)


class CondensedLinear(nn.Module):
    """``index_select`` of ``kept`` input features -> ``nn.Linear`` (CondenseNet's condensed classifier)."""

    def __init__(self, in_features: int, out_features: int, kept: int) -> None:
        super().__init__()
        if not 0 < kept <= in_features:
            raise ValueError(f"CondensedLinear keeps 1 .. {in_features} input features, got {kept}")
        self.in_features, self.out_features, self.kept = in_features, out_features, kept
        self.register_buffer("index", torch.arange(kept))
        self.linear = nn.Linear(kept, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.index_select(1, self.index))


def _copy_norm(source: nn.BatchNorm2d, target: nn.BatchNorm2d, index: torch.Tensor) -> None:
    """Copy the BN channels ``index`` of ``source`` into ``target`` (affine and running statistics)."""
    target.eps, target.momentum = source.eps, source.momentum
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(target, name).copy_(getattr(source, name)[index])
    target.num_batches_tracked.copy_(source.num_batches_tracked)


_LEARNED = (LearnedGroupConv, LearnedLinear)


def update_condensation(model: nn.Module, progress: float) -> None:
    """Advance every learned group conv / linear of ``model`` to training ``progress`` (0 -> 1)."""
    for module in model.modules():
        if isinstance(module, _LEARNED):
            module.update(progress)


def group_lasso_loss(model: nn.Module) -> torch.Tensor:
    """Sum of the group-lasso terms of every :class:`LearnedGroupConv` (add ``lambda`` times it to the loss)."""
    terms = [m.group_lasso() for m in model.modules() if isinstance(m, LearnedGroupConv)]
    if not terms:
        raise ValueError(f"{type(model).__name__} has no LearnedGroupConv; build it with condensed=False")
    return torch.stack(terms).sum()


def condense_model(model: nn.Module) -> nn.Module:
    """Replace every learned group conv / linear by its condensed form (in place); returns ``model``."""
    for name, child in list(model.named_children()):
        if isinstance(child, _LEARNED):
            setattr(model, name, child.fuse_for_inference())
        else:
            condense_model(child)
    return model
