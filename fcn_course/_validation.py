"""Argument checks shared by every public function of the package.

Each helper raises a ``TypeError`` or ``ValueError`` whose message names the argument,
says what was expected and what came, and ends with what to do about it, e.g.::

    ValueError: bilinear_kernel(): argument 'kernel_size' expected a positive int, got 0;
    pass the size of the square upsampling kernel, e.g. 2 * factor - factor % 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

__all__ = [
    "check_choice",
    "check_int",
    "check_tensor",
    "describe",
    "fail",
]


def describe(value: Any) -> str:
    """A short description of ``value`` for an error message (type, and shape for tensors)."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, bool):
        return f"bool {value!r}"
    if isinstance(value, int | float | str):
        return repr(value)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def fail(
    where: str, name: str, expected: str, got: str, fix: str, *, error: type[Exception] = ValueError
) -> Exception:
    """Build (not raise) an error in the package's standard form."""
    message = f"{where}: argument '{name}' expected {expected}, got {got}"
    if fix:
        message += f"; {fix}"
    return error(message)


def check_int(
    where: str,
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    fix: str = "",
) -> int:
    """Return ``value`` if it is an int (not a bool) that is at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        expected = "an int" if minimum is None else f"an int >= {minimum}"
        raise fail(where, name, expected, describe(value), fix, error=TypeError)
    if minimum is not None and value < minimum:
        expected = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise fail(where, name, expected, repr(value), fix)
    return value


def check_choice(
    where: str, name: str, value: Any, choices: Iterable[Any], *, fix: str = ""
) -> Any:
    """Return ``value`` if it is one of ``choices``; the error lists the valid ones."""
    options = list(choices)
    if value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise fail(where, name, f"one of {listed}", describe(value), fix or "pick one of those")
    return value


def check_tensor(
    where: str,
    name: str,
    value: Any,
    *,
    ndim: int | Sequence[int] | None = None,
    shape_hint: str = "",
    channels: int | None = None,
    channel_dim: int = -3,
    floating: bool | None = None,
    fix: str = "",
) -> torch.Tensor:
    """Return ``value`` if it is a tensor of the given rank, channel count and dtype kind.

    ``shape_hint`` (e.g. ``"(N, 3, H, W)"``) is quoted in the message so the reader sees the
    layout that was meant; ``floating=True`` asks for a floating dtype, ``False`` for an integer.
    """
    if not isinstance(value, torch.Tensor):
        raise fail(
            where,
            name,
            f"a torch.Tensor {shape_hint}".rstrip(),
            describe(value),
            fix or "convert it with torch.as_tensor(...)",
            error=TypeError,
        )
    if ndim is not None:
        ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in ranks:
            wanted = " or ".join(f"{r}-d" for r in ranks)
            expected = f"a {wanted} tensor {shape_hint}".rstrip()
            hint = fix
            if not hint and value.ndim + 1 in ranks:
                hint = "add a batch dimension with x.unsqueeze(0)"
            raise fail(where, name, expected, describe(value), hint)
    if channels is not None and value.shape[channel_dim] != channels:
        raise fail(
            where,
            name,
            f"{channels} channels in dim {channel_dim} {shape_hint}".rstrip(),
            f"{value.shape[channel_dim]} channels ({describe(value)})",
            fix,
        )
    if floating is True and not value.is_floating_point():
        raise fail(
            where, name, "a floating-point tensor", describe(value), fix or "call .float() on it",
            error=TypeError,
        )
    if floating is False and (value.is_floating_point() or value.is_complex()):
        raise fail(
            where, name, "an integer tensor", describe(value), fix or "call .long() on it",
            error=TypeError,
        )
    return value
