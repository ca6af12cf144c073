"""Parameter and FLOP counts for the book's comparison tables.

FLOPs here are floating-point operations as ``torch.utils.flop_counter.FlopCounterMode``
counts them: a multiply-add is 2 FLOPs (so MACs = FLOPs / 2), convolutions (transposed
ones included) and matrix products are counted, and element-wise work such as ReLU,
pooling, bias and the skip sums is not. A 3x3 convolution from ``C_in`` to ``C_out``
channels on an ``H x W`` output costs ``2 * C_in * C_out * 9 * H * W``.
Used in the chapters "Skip connections" (32s vs 16s vs 8s) and "What came after".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fcn_course._validation import check_int, describe, fail

__all__ = ["Complexity", "complexity", "count_flops", "count_parameters"]


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameter values (shared tensors counted once); ``trainable_only`` skips
    frozen ones, such as the fixed bilinear upsampling of the FCNs."""
    if not isinstance(model, nn.Module):
        raise fail("count_parameters()", "model", "an nn.Module", describe(model), "",
                   error=TypeError)
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(
    model: nn.Module,
    input_size: int | Sequence[int],
    *,
    batch_size: int = 1,
    in_channels: int = 3,
) -> int:
    """FLOPs (2 per multiply-add) of one forward pass on a zero batch of the given size.

    ``input_size`` is ``S`` for ``S x S`` or ``(H, W)``. The model runs once in eval mode,
    without gradients, on its own device and dtype; its train/eval mode is restored.
    """
    where = "count_flops()"
    if not isinstance(model, nn.Module):
        raise fail(where, "model", "an nn.Module", describe(model), "", error=TypeError)
    h, w = _size_pair(where, input_size)
    check_int(where, "batch_size", batch_size, minimum=1)
    check_int(where, "in_channels", in_channels, minimum=1)
    reference = next(model.parameters(), None)
    x = torch.zeros(
        batch_size, in_channels, h, w,
        device=None if reference is None else reference.device,
        dtype=torch.float32 if reference is None else reference.dtype,
    )
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


@dataclass(frozen=True)
class Complexity:
    """One row of a comparison table."""

    parameters: int
    trainable_parameters: int
    flops: int

    @property
    def macs(self) -> int:
        return self.flops // 2


def complexity(model: nn.Module, input_size: int | Sequence[int]) -> Complexity:
    """Parameters, trainable parameters and FLOPs (one image of ``input_size``) of ``model``."""
    return Complexity(
        parameters=count_parameters(model),
        trainable_parameters=count_parameters(model, trainable_only=True),
        flops=count_flops(model, input_size),
    )


def _size_pair(where: str, input_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(input_size, int) and not isinstance(input_size, bool):
        check_int(where, "input_size", input_size, minimum=1)
        return input_size, input_size
    pair = isinstance(input_size, Sequence) and not isinstance(input_size, str)
    if pair and len(input_size) == 2:
        h, w = input_size
        check_int(where, "input_size", h, minimum=1, fix="pass S or (H, W)")
        check_int(where, "input_size", w, minimum=1, fix="pass S or (H, W)")
        return h, w
    raise fail(where, "input_size", "an int S or a pair (H, W)", describe(input_size),
               "e.g. 128 or (128, 96)", error=TypeError)
