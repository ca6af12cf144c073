"""Tests of fcn_course.viz: colours, overlays, error maps and figures (Agg backend)."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from fcn_course.viz import (
    CORRECT_COLOR,
    VOID_COLOR,
    WRONG_COLOR,
    colorize,
    error_map,
    overlay,
    palette,
    plot_curves,
    prediction_grid,
    show_pairs,
)

MASK = torch.tensor([[0, 1, 2], [3, 255, 1]])


def test_palette_is_voc_with_black_background_and_a_distinct_void() -> None:
    colors = palette(21)
    assert colors.shape == (21, 3) and colors.dtype == torch.uint8
    assert colors[0].tolist() == [0, 0, 0]
    # PASCAL VOC's first colours and void colour.
    assert colors[1:4].tolist() == [[128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert VOID_COLOR == (224, 224, 192)
    every = palette(255)
    assert len({tuple(c) for c in every.tolist()} | {VOID_COLOR}) == 256


def test_colorize_shapes_colours_and_void() -> None:
    image = colorize(MASK)
    assert image.shape == (2, 3, 3) and image.dtype == torch.uint8
    assert image[1, 1].tolist() == list(VOID_COLOR)
    colors = palette(4)
    for (y, x), label in np.ndenumerate(MASK.numpy()):
        if label != 255:
            assert image[y, x].tolist() == colors[label].tolist()
    batch = colorize(torch.stack([MASK, MASK]))
    assert batch.shape == (2, 2, 3, 3)
    assert torch.equal(colorize(MASK.numpy().astype(np.uint8)), image)


def test_colorize_with_custom_palette_and_ignore_index() -> None:
    custom = [(10, 20, 30), (40, 50, 60)]
    image = colorize(torch.tensor([[0, 1, -1]]), custom, ignore_index=-1)
    assert image[0].tolist() == [[10, 20, 30], [40, 50, 60], list(VOID_COLOR)]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: colorize(MASK.float()), TypeError, r"'mask' expected an integer tensor"),
        (lambda: colorize(MASK, palette(3)), ValueError, r"'mask'.*range\(3\).*values \{3\}"),
        (lambda: colorize(MASK, torch.ones(4, 4)), ValueError, r"'palette' expected a \(K, 3\)"),
        (lambda: colorize(MASK, [(300, 0, 0)] * 4), ValueError, r"uint8 RGB values in 0..255"),
        (lambda: colorize(MASK[0]), ValueError, r"'mask' expected a 2-d or 3-d or 4-d"),
        (lambda: palette(0), ValueError, r"'num_classes' expected a positive int"),
        (lambda: palette(256), ValueError, r"at most 255 classes"),
    ],
)
def test_colorize_and_palette_bad_inputs(
    call: Callable[[], object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call()


def test_overlay_alpha_zero_returns_the_image() -> None:
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, 2, 3), generator=g, dtype=torch.uint8)
    out = overlay(image, MASK, alpha=0.0)
    assert out.shape == (2, 3, 3) and out.dtype == torch.uint8
    assert torch.equal(out, image.permute(1, 2, 0))
    as_float = image.float() / 255
    assert torch.equal(overlay(as_float, MASK, alpha=0.0), image.permute(1, 2, 0))


def test_overlay_alpha_one_paints_classes_and_void_but_not_background() -> None:
    image = torch.full((3, 2, 3), 77, dtype=torch.uint8)
    out = overlay(image, MASK, alpha=1.0)
    assert out[0, 0].tolist() == [77, 77, 77]  # background left visible
    assert out[0, 1].tolist() == palette(2)[1].tolist()
    assert out[1, 1].tolist() == list(VOID_COLOR)
    painted = overlay(image, MASK, alpha=1.0, draw_background=True)
    assert painted[0, 0].tolist() == [0, 0, 0]
    only_background = torch.zeros(2, 3, dtype=torch.long)
    assert torch.equal(overlay(image, only_background), image.permute(1, 2, 0))


@pytest.mark.parametrize(
    ("image", "mask", "kwargs", "error", "match"),
    [
        (torch.rand(3, 2, 3), MASK, {"alpha": 1.5}, ValueError, r"'alpha' expected a number in"),
        (torch.rand(3, 4, 4), MASK, {}, ValueError, r"'mask' expected the image's size"),
        (torch.rand(2, 3, 3), MASK, {}, ValueError, r"image.permute\(2, 0, 1\)"),
        (torch.rand(3, 2, 3) * 4 - 2, MASK, {}, ValueError, r"undo the normalisation"),
        (torch.zeros(3, 2, 3, dtype=torch.long), MASK, {}, TypeError, r"uint8 or floating"),
        (torch.rand(1, 3, 2, 3), MASK, {}, ValueError, r"'image' expected a 3-d tensor"),
    ],
)
def test_overlay_bad_inputs(
    image: torch.Tensor, mask: torch.Tensor, kwargs: dict[str, float],
    error: type[Exception], match: str,
) -> None:
    with pytest.raises(error, match=match):
        overlay(image, mask, **kwargs)


def test_error_map_colours() -> None:
    pred = torch.tensor([[0, 2, 2], [0, 0, 1]])
    out = error_map(pred, MASK)
    assert out.shape == (2, 3, 3) and out.dtype == torch.uint8
    expected = [
        [CORRECT_COLOR, WRONG_COLOR, CORRECT_COLOR],
        [WRONG_COLOR, VOID_COLOR, CORRECT_COLOR],
    ]
    assert out.tolist() == [[list(c) for c in row] for row in expected]
    logits = torch.nn.functional.one_hot(pred, 4).permute(2, 0, 1).float()  # (C, H, W)
    assert torch.equal(error_map(logits, MASK), out)
    batch = error_map(torch.stack([pred, pred]), torch.stack([MASK, MASK]))
    assert batch.shape == (2, 2, 3, 3)


def test_error_map_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"'pred' expected labels of the target's shape"):
        error_map(torch.zeros(2, 2, dtype=torch.long), MASK)
    with pytest.raises(TypeError, match=r"'pred' expected a floating-point tensor"):
        error_map(torch.zeros(4, 2, 3, dtype=torch.long), MASK)
    with pytest.raises(TypeError, match=r"'target' expected an integer tensor"):
        error_map(MASK, MASK.float())


def batch(n: int = 2, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    images = torch.rand(n, 3, size, size, generator=g)
    masks = torch.randint(0, 3, (n, size, size), generator=g)
    masks[0, 0] = 255
    return images, masks


def legend_labels(fig: Figure) -> list[str]:
    return [text.get_text() for text in fig.legends[0].get_texts()]


def test_prediction_grid_layout_and_legend() -> None:
    opened = plt.get_fignums()
    images, masks = batch(3)
    fig = prediction_grid(images, masks, masks.clamp(max=2), class_names=["bg", "disc", "bar"])
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 * 3
    assert [ax.get_title() for ax in fig.axes[:3]] == ["image", "ground truth", "prediction"]
    assert legend_labels(fig) == ["bg", "disc", "bar", "void"]
    logits = torch.randn(3, 3, 8, 8)
    fig = prediction_grid(images, masks, {"FCN-32s": logits, "FCN-8s": masks.clamp(max=2)})
    assert len(fig.axes) == 3 * 4
    assert [ax.get_title() for ax in fig.axes[:4]] == ["image", "ground truth", "FCN-32s", "FCN-8s"]
    assert legend_labels(fig)[:3] == ["0", "1", "2"]
    fig.canvas.draw()  # renders without error
    assert plt.get_fignums() == opened  # nothing left registered with pyplot


def test_show_pairs_has_two_columns() -> None:
    images, masks = batch(2)
    fig = show_pairs((images * 255).round().to(torch.uint8), masks)
    assert len(fig.axes) == 2 * 2
    assert legend_labels(fig) == ["0", "1", "2", "void"]


def test_prediction_grid_bad_inputs() -> None:
    images, masks = batch(2)
    with pytest.raises(ValueError, match=r"'masks' expected one \(H, W\) mask per image"):
        prediction_grid(images, masks[:1])
    with pytest.raises(ValueError, match=r"'preds' expected labels of the masks' shape"):
        prediction_grid(images, masks, masks[:, :4])
    with pytest.raises(ValueError, match=r"'masks' expected labels in range\(2\)"):
        prediction_grid(images, masks, class_names=["bg", "disc"])
    with pytest.raises(ValueError, match=r"show_pairs\(\): argument 'images'"):
        show_pairs(images[0], masks)


def test_plot_curves_panels() -> None:
    history = {"train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8], "val_mean_iou": [0.2, 0.5]}
    fig = plot_curves(history, title="FCN-8s")
    assert len(fig.axes) == 2
    loss_ax, score_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["train_loss", "val_loss"]
    assert list(score_ax.get_lines()[0].get_xdata()) == [1, 2]
    assert len(plot_curves({"train_loss": [0.5, torch.tensor(0.4)]}).axes) == 1


@pytest.mark.parametrize(
    ("history", "error", "match"),
    [
        ({}, ValueError, r"at least one non-empty list"),
        ({"train_loss": []}, ValueError, r"at least one non-empty list"),
        ({"train_loss": ["a"]}, TypeError, r"'history\['train_loss'\]' expected a list of numbers"),
        ({"train_loss": 0.5}, TypeError, r"'history\['train_loss'\]' expected a list of numbers"),
        ([0.5, 0.4], TypeError, r"'history' expected a dict of lists"),
    ],
)
def test_plot_curves_bad_inputs(history: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        plot_curves(history)
