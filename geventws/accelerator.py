"""The optional C accelerator (``geventws._speedups``), built when a compiler is there.

Each function it offers has a pure-Python counterpart that stays the reference: the masker in
:mod:`geventws.masking`, the frame parser in :mod:`geventws.protocol`. Tests check both agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def accelerated(name: str) -> Callable[..., Any] | None:
    """Return the C function ``name`` of the accelerator, or None where it did not build."""
    try:
        speedups = importlib.import_module("geventws._speedups")
    except ImportError:
        return None
    function: Callable[..., Any] | None = getattr(speedups, name, None)
    return function
