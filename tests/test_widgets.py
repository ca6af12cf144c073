"""Tests of fcn_course.widgets: overlap counts against F.conv_transpose2d, plots, the explorer."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from fcn_course.widgets import (
    plot_transposed_conv_overlap,
    transposed_conv_explorer,
    transposed_conv_overlap,
)


def oracle_counts(size: int, kernel_size: int, stride: int, padding: int) -> torch.Tensor:
    """Kernel copies per output pixel: an all-ones input through an all-ones kernel."""
    ones = torch.ones(1, 1, size, size, dtype=torch.float64)
    kernel = torch.ones(1, 1, kernel_size, kernel_size, dtype=torch.float64)
    return F.conv_transpose2d(ones, kernel, stride=stride, padding=padding)[0, 0]


GEOMETRIES = [
    (n, k, s, p)
    for n, k, s, p in itertools.product((1, 2, 5), (1, 2, 3, 4, 5), (1, 2, 3), (0, 1, 2))
    if (n - 1) * s + k - 2 * p >= 1
]


@pytest.mark.parametrize(("n", "k", "s", "p"), GEOMETRIES)
def test_overlap_counts_equal_conv_transpose_of_ones(n: int, k: int, s: int, p: int) -> None:
    counts = transposed_conv_overlap(n, k, s, p)
    assert counts.dtype == torch.int64
    torch.testing.assert_close(counts.double(), oracle_counts(n, k, s, p), rtol=0, atol=0)


def test_overlap_counts_by_hand() -> None:
    # 3 inputs, kernel 3, stride 2: stamps on [0, 3), [2, 5), [4, 7) overlap at 2 and 4.
    line = torch.tensor([1, 1, 2, 1, 2, 1, 1])
    assert torch.equal(transposed_conv_overlap(3, 3, 2), torch.outer(line, line))
    # Kernel 4, stride 2: [1, 1, 2, 2, 2, 2, 1, 1]; padding 1 cuts one pixel from each end.
    line = torch.tensor([1, 2, 2, 2, 2, 1])
    assert torch.equal(transposed_conv_overlap(3, 4, 2, 1), torch.outer(line, line))


@pytest.mark.parametrize(("n", "k", "s", "p"), [(5, 3, 2, 0), (4, 4, 2, 1), (2, 64, 32, 16)])
def test_plot_draws_the_oracle_counts(n: int, k: int, s: int, p: int) -> None:
    fig = plot_transposed_conv_overlap(n, k, s, p)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    drawn = np.asarray(ax.images[0].get_array())
    np.testing.assert_array_equal(drawn, oracle_counts(n, k, s, p).numpy())
    out = drawn.shape[0]
    assert f"{n}×{n} → {out}×{out}" in ax.get_title()
    if out <= 24:  # every cell carries its count
        assert sorted(int(t.get_text()) for t in ax.texts) == sorted(drawn.ravel().tolist())
    else:  # too many cells to write in: a colour bar instead
        assert len(ax.texts) == 0 and len(fig.axes) == 2


def test_plot_caption_tells_even_from_uneven_overlap() -> None:
    uneven = plot_transposed_conv_overlap(5, 3, 2).axes[0].get_xlabel()
    even = plot_transposed_conv_overlap(5, 4, 2).axes[0].get_xlabel()
    assert uneven == "interior: uneven, 1, 2, 4 copies"
    assert even == "interior: even, 4 copies everywhere"
    assert "no interior" in plot_transposed_conv_overlap(1, 3, 2).axes[0].get_xlabel()


def test_plot_into_given_axes() -> None:
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert plot_transposed_conv_overlap(4, 3, 2, ax=left) is fig
    assert plot_transposed_conv_overlap(4, 4, 2, ax=right) is fig
    assert len(left.images) == 1 and len(right.images) == 1
    assert right.get_title().startswith("k=4, s=2")
    sub = Figure().subfigures(1, 2)[1]
    assert plot_transposed_conv_overlap(3, 2, 2, ax=sub.subplots()) is sub.figure


def _sliders(explorer: widgets.VBox) -> dict[str, widgets.IntSlider]:
    row = explorer.children[0]
    return {s.description: s for s in row.children if isinstance(s, widgets.IntSlider)}


def _printed(explorer: widgets.VBox) -> str:
    output = explorer.children[1]
    assert isinstance(output, widgets.Output)
    return "".join(o["text"] for o in output.outputs if o["output_type"] == "stream")


def _expected_side(n: int, k: int, s: int, p: int) -> int:
    return oracle_counts(n, k, s, p).shape[-1]


def test_explorer_builds_without_a_display() -> None:
    explorer = transposed_conv_explorer(size=4, kernel_size=3, stride=2, padding=0)
    assert isinstance(explorer, widgets.VBox)
    sliders = _sliders(explorer)
    assert list(sliders) == ["size", "kernel", "stride", "padding"]
    assert [s.value for s in sliders.values()] == [4, 3, 2, 0]
    side = _expected_side(4, 3, 2, 0)
    assert f"= {side}, so 4x4 -> {side}x{side}" in _printed(explorer)
    images = [o for o in explorer.children[1].outputs if o["output_type"] == "display_data"]
    assert len(images) == 1
    png = images[0]["data"]["image/png"]
    assert png.startswith("iVBORw0KGgo")  # base64 of the PNG signature


def test_explorer_sliders_update_the_printed_size() -> None:
    explorer = transposed_conv_explorer()
    sliders = _sliders(explorer)
    for key, value in [("stride", 3), ("kernel", 5), ("padding", 2), ("size", 7)]:
        before = _printed(explorer)
        sliders[key].value = value
        n, k, s, p = (sliders[name].value for name in ("size", "kernel", "stride", "padding"))
        side = _expected_side(n, k, s, p)
        assert _printed(explorer) != before
        assert f"= {side}, so {n}x{n} -> {side}x{side}" in _printed(explorer)


def test_explorer_reports_empty_output_instead_of_raising() -> None:
    explorer = transposed_conv_explorer(size=1, kernel_size=2, stride=1, padding=0)
    sliders = _sliders(explorer)
    sliders["padding"].value = 3  # (1 - 1) * 1 + 2 - 6 < 1
    text = _printed(explorer)
    assert "empty; padding can be at most 0 here" in text
    assert all(o["output_type"] == "stream" for o in explorer.children[1].outputs)
    sliders["padding"].value = 0
    assert "so 1x1 -> 2x2" in _printed(explorer)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: transposed_conv_overlap(0, 3, 2), ValueError, "'size' expected a positive int"),
        (lambda: transposed_conv_overlap(4, 2.5, 2), TypeError, "'kernel_size' expected an int"),
        (lambda: transposed_conv_overlap(4, 3, 0), ValueError, "'stride' expected a positive"),
        (lambda: transposed_conv_overlap(4, 3, 2, -1), ValueError, "'padding' expected an int >="),
        (lambda: transposed_conv_overlap(1, 2, 1, 1), ValueError, r"'padding' expected at most 0"),
        (lambda: plot_transposed_conv_overlap(4, 3, True), TypeError, "'stride' expected an int"),
        (lambda: plot_transposed_conv_overlap(4, 3, 2, ax="left"), TypeError, "'ax' expected"),
        (lambda: transposed_conv_explorer(size=20), ValueError, r"'size' expected an int in 1\.\."),
        (lambda: transposed_conv_explorer(kernel_size=0), ValueError, "'kernel_size' expected a"),
        (lambda: transposed_conv_explorer(padding=5), ValueError, "'padding' expected an int in"),
        (lambda: transposed_conv_explorer(1, 1, 1, 1), ValueError, "'padding' expected at most 0"),
    ],
)
def test_bad_arguments_raise_clear_errors(
    call: Callable[[], object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call()
