"""Errors the command line reports as one line with exit code 2 (bad input, not a bug)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user (a wrong option, a missing file): say what to do instead."""


class WeightsError(UsageError, ValueError):
    """Published or user weights that cannot be used: unknown tag, missing or corrupt file, wrong model."""


class ModelArgumentError(UsageError, ValueError):
    """A model argument outside its valid range: a width or depth multiplier that is not a positive number."""


class InputShapeError(UsageError, ValueError):
    """An input a model cannot take: the wrong number of channels, or smaller than its layers allow."""
