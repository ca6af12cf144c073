"""Interactive explorers for the book (ipywidgets), each built on a plain plotting function.

A widget responds only in a running notebook; the built HTML book shows it inert. Every
explorer here is therefore a thin layer of sliders over a pure function that draws one
matplotlib Figure, and a chapter calls that function with fixed values for its static figures.

* :func:`transposed_conv_overlap`, :func:`plot_transposed_conv_overlap` and
  :func:`transposed_conv_explorer`: how many kernel copies land on each output pixel of a
  transposed convolution, and the checkerboard that uneven overlap draws.
  Chapter "Transposed convolution".
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fcn_course._validation import check_int, describe, fail
from fcn_course.models.upsample import conv_transpose_output_size

__all__ = [
    "plot_transposed_conv_overlap",
    "transposed_conv_explorer",
    "transposed_conv_overlap",
]

# Above this output side the counts are not written into the cells (a colour bar is drawn).
_ANNOTATE_UP_TO = 24


def _check_geometry(where: str, size: Any, kernel_size: Any, stride: Any, padding: Any) -> int:
    """Validate one square transposed-convolution geometry; return its output side."""
    check_int(where, "size", size, minimum=1, fix="pass the input side in pixels, e.g. 5")
    check_int(where, "kernel_size", kernel_size, minimum=1, fix="e.g. 3 or 4")
    check_int(where, "stride", stride, minimum=1, fix="e.g. 2 to upsample by two")
    check_int(where, "padding", padding, minimum=0)
    uncropped = (size - 1) * stride + kernel_size
    if uncropped - 2 * padding < 1:
        raise fail(
            where, "padding", f"at most {(uncropped - 1) // 2} for size={size}, "
            f"kernel_size={kernel_size}, stride={stride}, so that the output is not empty",
            repr(padding), "use less padding, a larger kernel or a larger input",
        )
    return conv_transpose_output_size(size, kernel_size, stride, padding)


def _overlap_1d(size: int, kernel_size: int, stride: int) -> np.ndarray:
    """Uncropped 1-d counts: input ``i`` stamps ones on ``[i * stride, i * stride + k)``."""
    counts = np.zeros((size - 1) * stride + kernel_size, dtype=np.int64)
    for i in range(size):
        counts[i * stride : i * stride + kernel_size] += 1
    return counts


def transposed_conv_overlap(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0
) -> torch.Tensor:
    """How many kernel copies land on each output pixel of a square transposed convolution.

    Each of the ``size x size`` inputs stamps a ``kernel_size x kernel_size`` block of ones,
    ``stride`` pixels after its neighbour; ``padding`` pixels are then cut from every border.
    The count is what ``F.conv_transpose2d`` makes of an all-ones input and an all-ones kernel.

    Returns:
        int64 tensor ``(out, out)`` with ``out = (size - 1) * stride - 2 * padding + kernel_size``.

    Chapter: "Transposed convolution".
    """
    out = _check_geometry("transposed_conv_overlap()", size, kernel_size, stride, padding)
    line = _overlap_1d(size, kernel_size, stride)[padding : padding + out]  # (out,)
    # A box kernel is separable, so the 2-d count is the outer product of the 1-d ones.
    return torch.from_numpy(np.outer(line, line))  # (out, out)


def _interior_counts(size: int, kernel_size: int, stride: int) -> list[int]:
    """Distinct 2-d counts away from the borders, where every phase is fully covered."""
    line = _overlap_1d(size, kernel_size, stride)
    # Position o sees every input that could reach it once o >= k - 1 and o // stride <= n - 1.
    inner = line[kernel_size - 1 : min(size * stride, len(line))]
    if len(inner) < stride:  # not even one full period of the pattern
        return []
    values = {int(a) * int(b) for a in inner for b in inner}
    return sorted(values)


def plot_transposed_conv_overlap(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    ax: Axes | None = None,
) -> Figure:
    """Draw :func:`transposed_conv_overlap` as an image, counts written in the cells.

    The title gives the geometry and the output size; the caption says whether the interior
    is covered evenly (``kernel_size`` a multiple of ``stride``) or in a checkerboard.
    Colours run from 0 to ``ceil(kernel_size / stride) ** 2``, so panels of the same kernel
    and stride compare directly.

    Args:
        ax: the Axes to draw into; by default a new Figure (not registered with pyplot) is made.

    Returns:
        the Figure that holds the drawing.

    Chapter: "Transposed convolution".
    """
    where = "plot_transposed_conv_overlap()"
    counts = transposed_conv_overlap(size, kernel_size, stride, padding).numpy()
    if ax is None:
        fig = Figure(figsize=(4.0, 4.0), layout="constrained")
        ax = fig.subplots()
    elif not isinstance(ax, Axes):
        raise fail(where, "ax", "a matplotlib Axes or None", describe(ax),
                   "pass e.g. fig.subplots() or leave it out", error=TypeError)
    out = counts.shape[0]
    top = math.ceil(kernel_size / stride) ** 2
    image = ax.imshow(counts, cmap="viridis", vmin=0, vmax=max(top, 1), interpolation="nearest")
    ax.set_xticks(np.arange(-0.5, out, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, out, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.5 if out > 12 else 1.0)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    if out <= _ANNOTATE_UP_TO:
        fontsize = 9 if out <= 12 else 6
        for (row, col), value in np.ndenumerate(counts):
            shade = "black" if value > 0.6 * top else "white"
            ax.text(col, row, str(value), ha="center", va="center", color=shade,
                    fontsize=fontsize)
    else:
        ax.figure.colorbar(image, ax=ax, shrink=0.8, label="kernel copies")
    ax.set_title(f"k={kernel_size}, s={stride}, p={padding}: {size}×{size} → {out}×{out}")
    interior = _interior_counts(size, kernel_size, stride)
    if not interior:
        caption = "no interior: the input is too small"
    elif len(interior) == 1:
        caption = f"interior: even, {interior[0]} copies everywhere"
    else:
        caption = "interior: uneven, " + ", ".join(map(str, interior)) + " copies"
    ax.set_xlabel(caption)
    root = ax.figure.figure  # the top-level Figure, also when ax sits in a SubFigure
    assert isinstance(root, Figure)
    return root


def _figure_output(fig: Figure, text: str) -> dict[str, Any]:
    """A notebook ``display_data`` output holding ``fig`` as a PNG (``text`` as plain text)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {
        "output_type": "display_data",
        "data": {"image/png": data, "text/plain": text},
        "metadata": {},
    }


def transposed_conv_explorer(
    size: int = 4,
    kernel_size: int = 3,
    stride: int = 2,
    padding: int = 0,
) -> widgets.VBox:
    """Sliders for input size, kernel size, stride and padding of a transposed convolution.

    Below the sliders an output area prints the output size (the formula with the numbers
    put in) and draws :func:`plot_transposed_conv_overlap`; it redraws on every slider move.
    A padding that would leave no output is reported there instead of raising. Run it in a
    live notebook: in a static page the sliders do not respond.

    Returns:
        a ``VBox`` of an ``HBox`` of four ``IntSlider`` (descriptions ``size``, ``kernel``,
        ``stride``, ``padding``) and an ``Output``.

    Chapter: "Transposed convolution".
    """
    where = "transposed_conv_explorer()"
    limits = {"size": (1, 12), "kernel": (1, 8), "stride": (1, 4), "padding": (0, 4)}
    start = {"size": size, "kernel": kernel_size, "stride": stride, "padding": padding}
    names = {"size": "size", "kernel": "kernel_size", "stride": "stride", "padding": "padding"}
    for key, value in start.items():
        low, high = limits[key]
        check_int(where, names[key], value, minimum=low)
        if value > high:
            raise fail(where, names[key], f"an int in {low}..{high} (the slider's range)",
                       repr(value), f"start at most at {high} and move the slider from there")
    _check_geometry(where, size, kernel_size, stride, padding)

    sliders = {
        key: widgets.IntSlider(
            value=start[key], min=low, max=high, description=key, continuous_update=False,
            layout=widgets.Layout(width="220px"), style={"description_width": "55px"},
        )
        for key, (low, high) in limits.items()
    }
    output = widgets.Output()

    def redraw(_change: Any = None) -> None:
        n, k, s, p = (sliders[key].value for key in ("size", "kernel", "stride", "padding"))
        full = (n - 1) * s + k
        if full - 2 * p < 1:
            text = (f"output size: ({n} - 1) * {s} + {k} - 2 * {p} = {full - 2 * p}: "
                    f"empty; padding can be at most {(full - 1) // 2} here\n")
            output.outputs = ({"output_type": "stream", "name": "stdout", "text": text},)
            return
        out = conv_transpose_output_size(n, k, s, p)
        text = f"output size: ({n} - 1) * {s} + {k} - 2 * {p} = {out}, so {n}x{n} -> {out}x{out}\n"
        fig = plot_transposed_conv_overlap(n, k, s, p)
        output.outputs = (
            {"output_type": "stream", "name": "stdout", "text": text},
            _figure_output(fig, f"<overlap counts, k={k}, s={s}, p={p}>"),
        )

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox(list(sliders.values())), output])
