"""The optional C accelerator (``geventws._speedups``), built when a compiler is there.

Each thing it offers has a pure-Python counterpart that stays the reference: the masker and
the payload buffer in :mod:`geventws.masking`, the frame parser in :mod:`geventws.protocol`, the
message encoder in :mod:`geventws.frames`, and for ``send_each`` the one-connection-at-a-time
loop of :mod:`geventws.broadcasting`. Tests check both agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def accelerated(name: str) -> Callable[..., Any] | None:
    """Return the C function or type ``name`` of the accelerator, or None where it did not
    build."""
    try:
        speedups = importlib.import_module("geventws._speedups")
    except ImportError:
        return None
    function: Callable[..., Any] | None = getattr(speedups, name, None)
    return function
