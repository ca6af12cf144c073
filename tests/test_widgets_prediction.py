"""Tests of the prediction explorer of fcn_course.widgets: what it draws against the model's argmax.

The oracles are independent of the package's drawing code: labels are read back from the
drawn pixels through the palette, scores are computed from pixel sets, and the models are
called directly (``model(image[None]).argmax(1)``).
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from fcn_course import viz
from fcn_course.data import ShapesSegmentation
from fcn_course.models import fcn8s, fcn32s
from fcn_course.widgets import plot_prediction, predict_mask, prediction_explorer

NUM_CLASSES = 7
SIZE = 64
VOID = 255


def _random_scores(model: nn.Module, seed: int) -> nn.Module:
    """An untrained FCN whose score layers are random, so its argmax varies over the image."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in ("score_fr", "score_pool4", "score_pool3"):
            layer = getattr(model, name, None)
            if layer is not None:
                layer.weight.copy_(2.0 * torch.randn(layer.weight.shape, generator=generator))
                layer.bias.zero_()
    return model.eval()


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "FCN-8s": _random_scores(fcn8s(num_classes=NUM_CLASSES), seed=1),
        "FCN-32s": _random_scores(fcn32s(num_classes=NUM_CLASSES), seed=2),
    }


@pytest.fixture(scope="module")
def dataset() -> ShapesSegmentation:
    return ShapesSegmentation("test", num_images=4, image_size=SIZE, seed=0)


def oracle_labels(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The prediction by definition: the argmax over the class dimension of the logits."""
    model.eval()
    with torch.no_grad():
        return model(image[None]).argmax(1)[0]


def oracle_scores(pred: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """Pixel accuracy and mean IU from pixel sets: |P and T| / |P or T| per occurring class."""
    valid = mask != VOID
    accuracy = float((pred == mask)[valid].double().mean())
    ious = []
    for c in range(NUM_CLASSES):
        p, t = (pred == c) & valid, (mask == c) & valid
        union = int((p | t).sum())
        if union:
            ious.append(int((p & t).sum()) / union)
    return accuracy, sum(ious) / len(ious)


def decode(picture: np.ndarray, colors: dict[int, tuple[int, int, int]]) -> torch.Tensor:
    """Labels ``(H, W)`` from an ``(H, W, 3)`` picture, -1 where no colour of ``colors`` matches."""
    out = torch.full(picture.shape[:2], -1, dtype=torch.int64)
    for label, color in colors.items():
        out[torch.from_numpy((picture == np.asarray(color)).all(-1))] = label
    return out


def class_colors() -> dict[int, tuple[int, int, int]]:
    return {k: tuple(c) for k, c in enumerate(viz.palette(NUM_CLASSES).tolist())}


def drawn(fig: Figure, panel: int) -> np.ndarray:
    return np.asarray(fig.axes[panel].images[0].get_array())


def test_predict_mask_is_the_argmax_of_the_logits(models, dataset) -> None:
    for model in models.values():
        for i in range(2):
            image, _ = dataset[i]
            labels = predict_mask(model, image)
            expected = oracle_labels(model, image)
            assert labels.dtype == torch.int64 and labels.shape == (SIZE, SIZE)
            assert len(expected.unique()) >= 2  # a constant prediction would prove little
            assert torch.equal(labels, expected)


def test_predict_mask_runs_in_eval_mode_and_restores_the_mode(models, dataset) -> None:
    model = models["FCN-8s"]
    image, _ = dataset[1]
    expected = oracle_labels(model, image)  # eval mode: dropout off
    model.train()
    try:
        for _ in range(3):  # with dropout on, the argmax would change from call to call
            assert torch.equal(predict_mask(model, image), expected)
        assert model.training
    finally:
        model.eval()


def test_plot_prediction_draws_the_oracle_prediction(models, dataset) -> None:
    model = models["FCN-8s"]
    image, mask = dataset[0]
    assert bool((mask == VOID).any())  # the void colour is tested too
    expected = oracle_labels(model, image)
    fig = plot_prediction(model, image, mask, class_names=dataset.classes, title="FCN-8s")
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == [
        "image", "ground truth", "prediction", "overlay", "errors (red)"]

    # The image panel is the image; truth and prediction decode to the labels.
    np.testing.assert_allclose(drawn(fig, 0), image.permute(1, 2, 0).numpy(), atol=1e-6)
    truth_colors = {**class_colors(), VOID: viz.VOID_COLOR}
    assert torch.equal(decode(drawn(fig, 1), truth_colors), mask)
    assert torch.equal(decode(drawn(fig, 2), class_colors()), expected)

    # The overlay leaves background pixels as they are and tints the others.
    overlay = torch.from_numpy(drawn(fig, 3).copy())
    pixels = (image * 255).round().to(torch.uint8).permute(1, 2, 0)
    background = expected == 0
    assert torch.equal(overlay[background], pixels[background])
    assert not torch.equal(overlay[~background], pixels[~background])

    # The error map: red where the oracle is wrong, black where right, beige on void.
    valid = mask != VOID
    error_colors = {0: viz.CORRECT_COLOR, 1: viz.WRONG_COLOR, 2: viz.VOID_COLOR}
    want = torch.where(valid, (expected != mask).long(), 2)
    assert torch.equal(decode(drawn(fig, 4), error_colors), want)


def test_plot_prediction_title_and_legend(models, dataset) -> None:
    model = models["FCN-32s"]
    image, mask = dataset[2]
    accuracy, mean_iou = oracle_scores(oracle_labels(model, image), mask)
    fig = plot_prediction(model, image, mask, class_names=dataset.classes, title="FCN-32s")
    title = fig.get_suptitle()
    assert title == f"FCN-32s: pixel accuracy {accuracy:.3f}, mean IU {mean_iou:.3f}"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [*dataset.classes, "void", "wrong"]
    numbered = plot_prediction(model, image, torch.where(mask == VOID, 0, mask))
    assert [t.get_text() for t in numbered.legends[0].get_texts()] == [
        *map(str, range(NUM_CLASSES)), "wrong"]
    assert numbered.get_suptitle().startswith("pixel accuracy ")


def _printed(explorer: widgets.VBox) -> str:
    output = explorer.children[1]
    assert isinstance(output, widgets.Output)
    return "".join(o["text"] for o in output.outputs if o["output_type"] == "stream")


def _png(explorer: widgets.VBox) -> str:
    images = [o for o in explorer.children[1].outputs if o["output_type"] == "display_data"]
    assert len(images) == 1
    return images[0]["data"]["image/png"]


def _controls(explorer: widgets.VBox) -> tuple[widgets.ToggleButtons, widgets.IntSlider]:
    row = explorer.children[0]
    chooser, slider = row.children
    assert isinstance(chooser, widgets.ToggleButtons) and chooser.description == "model"
    assert isinstance(slider, widgets.IntSlider) and slider.description == "image"
    return chooser, slider


def expected_line(models, dataset, name: str, index: int) -> str:
    image, mask = dataset[index]
    accuracy, mean_iou = oracle_scores(oracle_labels(models[name], image), mask)
    return f"image {index}, {name}: pixel accuracy {accuracy:.3f}, mean IU {mean_iou:.3f}\n"


def test_explorer_shows_the_first_model_on_the_chosen_image(models, dataset) -> None:
    explorer = prediction_explorer(models, dataset, index=1)
    chooser, slider = _controls(explorer)
    assert list(chooser.options) == ["FCN-8s", "FCN-32s"] and chooser.value == "FCN-8s"
    assert (slider.value, slider.min, slider.max) == (1, 0, len(dataset) - 1)
    assert _printed(explorer) == expected_line(models, dataset, "FCN-8s", 1)
    assert _png(explorer).startswith("iVBORw0KGgo")  # base64 of the PNG signature


def test_explorer_follows_the_controls(models, dataset) -> None:
    explorer = prediction_explorer(models, dataset, model="FCN-32s")
    chooser, slider = _controls(explorer)
    assert _printed(explorer) == expected_line(models, dataset, "FCN-32s", 0)
    seen = {_png(explorer)}
    for name, index in [("FCN-32s", 3), ("FCN-8s", 3), ("FCN-8s", 2), ("FCN-32s", 2)]:
        chooser.value, slider.value = name, index
        assert _printed(explorer) == expected_line(models, dataset, name, index)
        seen.add(_png(explorer))
    assert len(seen) == 5  # every (model, image) pair drew a different picture


def test_explorer_predicts_lazily_and_once_per_model_and_image(models, dataset) -> None:
    calls = dict.fromkeys(models, 0)

    def counter(name: str) -> Callable[..., None]:
        def hook(*_: object) -> None:
            calls[name] += 1
        return hook

    hooks = [model.register_forward_hook(counter(name)) for name, model in models.items()]
    try:
        explorer = prediction_explorer(models, dataset)
        chooser, slider = _controls(explorer)
        assert calls == {"FCN-8s": 1, "FCN-32s": 0}  # only what is shown is predicted
        chooser.value = "FCN-32s"
        assert calls == {"FCN-8s": 1, "FCN-32s": 1}
        chooser.value = "FCN-8s"  # back to a pair already seen: no new forward pass
        slider.value = 2
        slider.value = 0
        chooser.value = "FCN-32s"
        assert calls == {"FCN-8s": 2, "FCN-32s": 1}
        assert _printed(explorer) == expected_line(models, dataset, "FCN-32s", 0)
    finally:
        for hook in hooks:
            hook.remove()


PIXEL_MODEL = nn.Conv2d(3, NUM_CLASSES, kernel_size=1)  # a tiny segmentation model
SHRINKING_MODEL = nn.Conv2d(3, NUM_CLASSES, kernel_size=3)  # loses a pixel at every border


def _image() -> torch.Tensor:
    return torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))


def _mask() -> torch.Tensor:
    return torch.randint(0, NUM_CLASSES, (8, 8), generator=torch.Generator().manual_seed(1))


def _pairs(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(_image(), _mask()) for _ in range(n)]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: predict_mask("fcn8s", _image()), TypeError, "'model' expected a torch.nn.Module"),
        (lambda: predict_mask(PIXEL_MODEL, _image()[None]), ValueError,
         r"'image' expected a 3-d tensor \(3, H, W\).*e\.g\. images\[0\]"),
        (lambda: predict_mask(PIXEL_MODEL, torch.rand(4, 8, 8)), ValueError,
         "'image' expected 3 channels"),
        (lambda: predict_mask(PIXEL_MODEL, (_image() * 255).byte()), TypeError,
         r"'image' expected a floating-point tensor.*image\.float\(\) / 255"),
        (lambda: predict_mask(SHRINKING_MODEL, _image()), ValueError,
         r"'model' expected class scores \(1, C, 8, 8\).*shape \(1, 7, 6, 6\)"),
        (lambda: plot_prediction(PIXEL_MODEL, _image(), _mask()[:4]), ValueError,
         r"'mask' expected the image's size \(H, W\) = \(8, 8\)"),
        (lambda: plot_prediction(PIXEL_MODEL, _image(), _mask()[None]), ValueError,
         r"'mask' expected a 2-d tensor.*masks\[0\]"),
        (lambda: plot_prediction(PIXEL_MODEL, _image(), _mask().float()), TypeError,
         "'mask' expected an integer tensor"),
        (lambda: plot_prediction(PIXEL_MODEL, _image(), _mask() + 5), ValueError,
         r"'mask' expected labels in range\(7\) \(the model's classes\)"),
        (lambda: plot_prediction(PIXEL_MODEL, _image(), _mask(), class_names=["a", "b"]),
         ValueError, "'class_names' expected 7 names, one per class the model scores, got 2"),
        (lambda: plot_prediction(PIXEL_MODEL, _image(), _mask(), class_names="abcdefg"),
         TypeError, "'class_names' expected a sequence of strings"),
        (lambda: plot_prediction(PIXEL_MODEL, _image(), _mask(), alpha=1.5), ValueError,
         r"'alpha' expected a number in \[0, 1\]"),
        (lambda: plot_prediction(PIXEL_MODEL, _image(), _mask(), title=3), TypeError,
         "'title' expected a string or None"),
        (lambda: prediction_explorer({}, _pairs(2)), ValueError,
         "'models' expected at least one model, got an empty mapping"),
        (lambda: prediction_explorer([PIXEL_MODEL], _pairs(2)), TypeError,
         "'models' expected a mapping from names to models"),
        (lambda: prediction_explorer({"a": "fcn8s"}, _pairs(2)), TypeError,
         r"'models\['a'\]' expected a torch.nn.Module"),
        (lambda: prediction_explorer({1: PIXEL_MODEL}, _pairs(2)), TypeError,
         "'models' expected string names as keys"),
        (lambda: prediction_explorer({"a": PIXEL_MODEL}, _pairs(2), index=2), ValueError,
         r"'index' expected an image index in 0\.\.1, got 2; the data set holds 2 images"),
        (lambda: prediction_explorer({"a": PIXEL_MODEL}, _pairs(2), index=-1), ValueError,
         r"'index' expected an int >= 0, got -1; pass an image index in 0\.\.1"),
        (lambda: prediction_explorer({"a": PIXEL_MODEL}, _pairs(2), index=1.0), TypeError,
         "'index' expected an int"),
        (lambda: prediction_explorer({"a": PIXEL_MODEL}, _pairs(2), model="b"), ValueError,
         "'model' expected one of 'a', got 'b'"),
        (lambda: prediction_explorer({"a": PIXEL_MODEL}, 42), TypeError,
         r"'dataset' expected a data set of \(image, mask\) pairs"),
        (lambda: prediction_explorer({"a": PIXEL_MODEL}, []), ValueError,
         "'dataset' expected at least one"),
        (lambda: prediction_explorer({"a": PIXEL_MODEL}, [(_image(),)]), ValueError,
         r"'dataset' expected items that are \(image, mask\) pairs"),
        (lambda: prediction_explorer({"a": PIXEL_MODEL}, _pairs(1), class_names=["x"]),
         ValueError, "'class_names' expected 7 names"),
        (lambda: prediction_explorer({"a": PIXEL_MODEL}, _pairs(1), alpha=-0.1), ValueError,
         r"'alpha' expected a number in \[0, 1\]"),
    ],
)
def test_bad_arguments_raise_clear_errors(
    call: Callable[[], object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call()
