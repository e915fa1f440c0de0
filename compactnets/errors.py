"""Errors the command line reports as one line with exit code 2 (bad input, not a bug)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user (a wrong option, a missing file): say what to do instead."""


class WeightsError(UsageError, ValueError):
    """Published or user weights that cannot be used: unknown tag, missing or corrupt file, wrong model."""
