"""Tests of fcn_course.data: synthetic shapes, the VOC wrapper and the joint transforms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader

from fcn_course.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SHAPE_CLASSES,
    VOC_CLASSES,
    VOID_INDEX,
    Normalize,
    PairTransform,
    RandomScale,
    ShapesClassification,
    ShapesSegmentation,
    VOCSegmentation,
    compute_mean_std,
    denormalize,
    eval_transforms,
    train_transforms,
    voc_mask_to_labels,
    voc_palette,
)

SAMPLE = 40  # images per statistical check: enough for every class, a few ms each


@pytest.fixture(scope="module")
def train_items() -> list[tuple[torch.Tensor, torch.Tensor]]:
    dataset = ShapesSegmentation("train", num_images=SAMPLE)
    return [dataset[i] for i in range(SAMPLE)]


@pytest.fixture(scope="module")
def train_layouts() -> list:
    dataset = ShapesSegmentation("train", num_images=SAMPLE)
    return [dataset.layout(i) for i in range(SAMPLE)]


def _equal(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> bool:
    return torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ---------------------------------------------------------------------------------------
# ShapesSegmentation: determinism


def test_same_seed_gives_identical_items() -> None:
    first = ShapesSegmentation("train", num_images=5, seed=3)
    second = ShapesSegmentation("train", num_images=5, seed=3)
    for i in range(5):
        assert _equal(first[i], second[i])


def test_seeds_and_splits_give_different_items() -> None:
    items = [
        ShapesSegmentation(split, num_images=3, seed=seed)[1]
        for split, seed in [("train", 0), ("val", 0), ("test", 0), ("train", 1)]
    ]
    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            assert not torch.equal(items[a][0], items[b][0])


def test_item_is_independent_of_num_images_and_read_order() -> None:
    small = ShapesSegmentation("val", num_images=4)
    large = ShapesSegmentation("val", num_images=10_000_000)  # lazily generated: costs nothing
    reversed_reads = [large[i] for i in reversed(range(4))][::-1]
    for i in range(4):
        assert _equal(small[i], reversed_reads[i])
    assert _equal(small[-1], small[3])


# ---------------------------------------------------------------------------------------
# ShapesSegmentation: contract and content


def test_types_shapes_and_ranges(train_items: list) -> None:
    dataset = ShapesSegmentation("train", num_images=SAMPLE)
    assert dataset.classes == ("background", *SHAPE_CLASSES)
    assert dataset.num_classes == len(SHAPE_CLASSES) + 1 == len(dataset.classes)
    assert dataset.palette.dtype == torch.uint8
    assert dataset.palette.shape == (dataset.num_classes, 3)
    assert len(dataset) == SAMPLE
    for image, mask in train_items:
        assert image.dtype == torch.float32 and image.shape == (3, 128, 128)
        assert mask.dtype == torch.int64 and mask.shape == (128, 128)
        assert 0.0 <= image.min() and image.max() <= 1.0
        values = set(mask.unique().tolist())
        assert values <= set(range(dataset.num_classes)) | {VOID_INDEX}


def test_image_size_is_respected() -> None:
    image, mask = ShapesSegmentation("test", num_images=1, image_size=48, size_range=(6, 20))[0]
    assert image.shape == (3, 48, 48) and mask.shape == (48, 48)


def test_every_class_appears(train_items: list) -> None:
    seen = set()
    for _, mask in train_items:
        seen |= set(mask.unique().tolist())
    assert set(range(len(SHAPE_CLASSES) + 1)) <= seen


def test_small_and_large_objects_occur(train_layouts: list) -> None:
    objects = [obj for layout in train_layouts for obj in layout]
    sizes = [obj.size for obj in objects]
    assert min(sizes) < 20 and max(sizes) > 50  # down to below a 32 x 32 cell of FCN-32s
    visible = [obj.pixels for obj in objects if obj.pixels > 0]
    assert min(visible) < 100  # smaller than a 1/32-resolution cell of 32 x 32
    assert max(visible) > 1500


def test_layout_matches_mask(train_items: list, train_layouts: list) -> None:
    for (_, mask), layout in zip(train_items, train_layouts, strict=True):
        assert 2 <= len(layout) <= 5
        for label in range(1, len(SHAPE_CLASSES) + 1):
            in_mask = int((mask == label).sum())
            in_layout = sum(obj.pixels for obj in layout if obj.label == label)
            assert in_mask == in_layout
        for obj in layout:
            assert SHAPE_CLASSES[obj.label - 1] == obj.shape


def test_object_colour_is_independent_of_class(train_layouts: list) -> None:
    colours: dict[int, list] = {label: [] for label in range(1, len(SHAPE_CLASSES) + 1)}
    for layout in train_layouts:
        for obj in layout:
            colours[obj.label].append(obj.color)
    overall = np.mean([c for cs in colours.values() for c in cs], axis=0)
    for label, cs in colours.items():
        assert len(cs) >= 5, SHAPE_CLASSES[label - 1]
        assert np.abs(np.mean(cs, axis=0) - overall).max() < 0.2


def test_masks_agree_with_the_image(train_items: list, train_layouts: list) -> None:
    contrasted = 0
    checked = 0
    for (image, mask), layout in zip(train_items, train_layouts, strict=True):
        top = layout[-1]  # drawn last, so nothing covers it
        if sum(obj.label == top.label for obj in layout) > 1 or top.pixels < 30:
            continue
        inside = mask == top.label
        mean_inside = image[:, inside].mean(1)
        assert (mean_inside - torch.tensor(top.color)).abs().max() < 0.12
        # A band 3 pixels wide just outside the object looks different from the object.
        grown = F.max_pool2d(inside[None, None].float(), 7, stride=1, padding=3)[0, 0] > 0
        around = grown & ~inside
        if around.any():
            checked += 1
            contrasted += int((image[:, around].mean(1) - mean_inside).abs().sum() > 0.15)
    assert checked >= 10 and contrasted >= 0.9 * checked


def test_void_band_on_and_off() -> None:
    on = ShapesSegmentation("val", num_images=6, void_boundary=2)
    off = ShapesSegmentation("val", num_images=6, void_boundary=0)
    for i in range(6):
        (image_on, mask_on), (image_off, mask_off) = on[i], off[i]
        assert torch.equal(image_on, image_off)  # the band is in the labels only
        assert (mask_off != VOID_INDEX).all()
        void = mask_on == VOID_INDEX
        assert void.any()
        assert torch.equal(mask_on[~void], mask_off[~void])
        # The band hugs the objects: every void pixel lies within 2 pixels of an object's
        # outline, so within 3 of an object pixel's centre (a sharp corner may hold none
        # nearer). The image border is left out: there an object may lie out of frame.
        objects = (mask_off > 0)[None, None].float()
        near = F.max_pool2d(objects, 7, stride=1, padding=3)[0, 0] > 0
        assert near[3:-3, 3:-3][void[3:-3, 3:-3]].all()


def test_thin_width_knob_thins_rings_crosses_and_ells() -> None:
    thin_labels = [SHAPE_CLASSES.index(name) + 1 for name in ("ring", "cross", "ell")]

    def thin_pixels(width: float) -> int:
        dataset = ShapesSegmentation("test", num_images=20, thin_width=(width, width),
                                     void_boundary=0)
        return sum(int(torch.isin(dataset[i][1], torch.tensor(thin_labels)).sum())
                   for i in range(20))

    assert thin_pixels(2.0) < 0.75 * thin_pixels(4.0)


def test_size_and_count_knobs() -> None:
    dataset = ShapesSegmentation("train", num_images=10, objects_per_image=(3, 3),
                                 size_range=(12.0, 14.0))
    for i in range(10):
        layout = dataset.layout(i)
        assert len(layout) == 3
        assert all(12.0 <= obj.size <= 14.0 for obj in layout)


def test_default_collate_batches_items() -> None:
    loader = DataLoader(ShapesSegmentation("train", num_images=4), batch_size=4)
    images, masks = next(iter(loader))
    assert images.shape == (4, 3, 128, 128) and masks.shape == (4, 128, 128)
    assert masks.dtype == torch.int64


# ---------------------------------------------------------------------------------------
# ShapesClassification


def test_classification_items() -> None:
    dataset = ShapesClassification("train", num_images=12)
    assert dataset.classes == SHAPE_CLASSES and dataset.num_classes == 6
    labels = []
    for i in range(12):
        image, label = dataset[i]
        assert image.dtype == torch.float32 and image.shape == (3, 96, 96)
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert isinstance(label, int)
        (obj,) = dataset.layout(i)
        assert obj.label == label and obj.shape == SHAPE_CLASSES[label]
        assert 24.0 <= obj.size <= 56.0
        assert abs(obj.center[0] - 48) <= 9.6 and abs(obj.center[1] - 48) <= 9.6
        labels.append(label)
    assert sorted(labels) == sorted(list(range(6)) * 2)  # balanced


def test_classification_is_deterministic_and_differs_from_segmentation() -> None:
    a = ShapesClassification("val", num_images=3, seed=5)
    b = ShapesClassification("val", num_images=300, seed=5)
    for i in range(3):
        assert torch.equal(a[i][0], b[i][0]) and a[i][1] == b[i][1]
    assert not torch.equal(a[0][0], ShapesClassification("test", num_images=3, seed=5)[0][0])


def test_classification_transforms_take_the_image_alone() -> None:
    dataset = ShapesClassification("val", num_images=2, transforms=eval_transforms(size=64))
    image, _ = dataset[0]
    assert image.shape == (3, 64, 64) and type(image) is torch.Tensor


# ---------------------------------------------------------------------------------------
# Bad input to the data sets


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"split": "training"}, ValueError, r"'split' expected one of 'train', 'val', 'test'"),
        ({"num_images": 0}, ValueError, "'num_images' expected a positive int, got 0"),
        ({"num_images": 2.5}, TypeError, "'num_images' expected an int"),
        ({"image_size": -8}, ValueError, "'image_size' expected an int >= 16"),
        ({"image_size": "128"}, TypeError, "'image_size' expected an int"),
        ({"seed": -1}, ValueError, "'seed' expected an int >= 0"),
        ({"void_boundary": -1}, ValueError, "'void_boundary'.*or 0 for no void band"),
        ({"size_range": (50, 10)}, ValueError, "'size_range' expected a .low, high. pair"),
        ({"size_range": (200, 300)}, ValueError, "'size_range'.*at most image_size = 128"),
        ({"size_range": 20}, TypeError, "'size_range' expected a .low, high. pair"),
        ({"thin_width": (0, 2)}, ValueError, "'thin_width'"),
        ({"noise": 2.0}, ValueError, r"'noise' expected a number in \[0.0, 1.0\]"),
        ({"objects_per_image": (0, 3)}, ValueError, "'objects_per_image'"),
        ({"objects_per_image": (1.0, 3)}, TypeError, "'objects_per_image'.*ints"),
        ({"distractors": (-1, 2)}, ValueError, "'distractors'"),
        ({"transforms": "flip"}, TypeError, "'transforms' expected a callable or None"),
    ],
)
def test_segmentation_rejects_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    kwargs = {"split": "train", **kwargs}
    with pytest.raises(error, match=match):
        ShapesSegmentation(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"split": "dev"}, ValueError, "'split' expected one of"),
        ({"num_images": -3}, ValueError, "'num_images' expected a positive int"),
        ({"image_size": 8}, ValueError, "'image_size' expected an int >= 16"),
        ({"size_range": (120, 130)}, ValueError, "'size_range'.*at most image_size = 96"),
    ],
)
def test_classification_rejects_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    kwargs = {"split": "train", **kwargs}
    with pytest.raises(error, match=match):
        ShapesClassification(**kwargs)


def test_index_errors() -> None:
    dataset = ShapesSegmentation("train", num_images=3)
    with pytest.raises(IndexError, match="index 3 is out of range for a data set of 3 images"):
        dataset[3]
    with pytest.raises(TypeError, match="'index' expected an int"):
        dataset["0"]
    assert len(list(iter(dataset))) == 3  # the IndexError ends plain iteration


# ---------------------------------------------------------------------------------------
# Transforms


def _mask_as_image(mask: torch.Tensor) -> torch.Tensor:
    """An image whose every channel spells out the mask, to see where pixels travel."""
    return (mask.float() / 255.0).expand(3, -1, -1).clone()


def _random_pair(height: int = 40, width: int = 56) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    mask = torch.randint(0, 7, (height, width), generator=generator)
    mask[:5, :9] = VOID_INDEX
    return _mask_as_image(mask), mask


def test_flip_and_crop_keep_image_and_mask_aligned() -> None:
    image, mask = _random_pair()
    flip = train_transforms((40, 56), scale_range=None, hflip_prob=1.0)
    out_image, out_mask = flip(image, mask)
    assert torch.equal(out_mask, torch.flip(mask, dims=[-1]))  # oracle: torch.flip
    assert torch.equal(out_image, torch.flip(image, dims=[-1]))
    torch.manual_seed(1)
    crop = train_transforms(24, scale_range=None, hflip_prob=0.5)
    for _ in range(5):
        out_image, out_mask = crop(image, mask)
        assert out_image.shape == (3, 24, 24) and out_mask.shape == (24, 24)
        assert torch.equal((out_image[0] * 255).round().long(), out_mask)


def test_random_scale_resizes_masks_nearest() -> None:
    image, mask = _random_pair()
    torch.manual_seed(2)
    scale = PairTransform(RandomScale((0.6, 1.7)))
    for _ in range(5):
        out_image, out_mask = scale(image, mask)
        assert out_mask.dtype == torch.int64 and out_image.dtype == torch.float32
        assert out_mask.shape == out_image.shape[1:]
        assert set(out_mask.unique().tolist()) <= set(mask.unique().tolist())
        # Oracle: nearest-neighbour resizing with torch.nn.functional.interpolate.
        expected = F.interpolate(mask[None, None].float(), size=tuple(out_mask.shape),
                                 mode="nearest")[0, 0].long()
        assert torch.equal(out_mask, expected)


def test_train_preset_on_shapes_keeps_label_set() -> None:
    torch.manual_seed(3)
    dataset = ShapesSegmentation("train", num_images=6, transforms=train_transforms(96))
    raw = ShapesSegmentation("train", num_images=6)
    for i in range(6):
        image, mask = dataset[i]
        assert image.shape == (3, 96, 96) and mask.shape == (96, 96)
        assert set(mask.unique().tolist()) <= set(raw[i][1].unique().tolist()) | {VOID_INDEX}


def test_crop_pads_image_with_zero_and_mask_with_void() -> None:
    image = torch.ones(3, 30, 20)
    mask = torch.zeros(30, 20, dtype=torch.int64)
    pad = train_transforms(50, scale_range=None, hflip_prob=0.0)
    out_image, out_mask = pad(image, mask)
    padded = out_mask == VOID_INDEX
    assert int(padded.sum()) == 50 * 50 - 30 * 20
    assert torch.equal(out_image.sum(0) == 0, padded)


def test_eval_preset_resizes_and_normalises() -> None:
    image, mask = _random_pair()
    out_image, out_mask = eval_transforms(size=(20, 28))(image, mask)
    assert out_image.shape == (3, 20, 28) and out_mask.shape == (20, 28)
    assert set(out_mask.unique().tolist()) <= set(mask.unique().tolist())
    identity_image, identity_mask = eval_transforms()(image, mask)
    assert torch.equal(identity_image, image) and torch.equal(identity_mask, mask)
    norm_image, norm_mask = eval_transforms(mean=IMAGENET_MEAN, std=IMAGENET_STD)(image, mask)
    expected = (image - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(
        IMAGENET_STD
    ).view(3, 1, 1)
    torch.testing.assert_close(norm_image, expected)
    assert torch.equal(norm_mask, mask)


def test_normalize_and_denormalize_round_trip() -> None:
    image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    normed, _ = Normalize(mean=mean, std=std)(image, torch.zeros(8, 8, dtype=torch.int64))
    torch.testing.assert_close(denormalize(normed, mean, std), image)
    torch.testing.assert_close(denormalize(Normalize()(image)), image)


def test_compute_mean_std_matches_torch() -> None:
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 10 + k, 12, generator=generator) * (k + 1) for k in range(4)]
    items = [(image, torch.zeros(image.shape[1:], dtype=torch.int64)) for image in images]
    mean, std = compute_mean_std(items)
    pixels = torch.cat([image.flatten(1) for image in images], dim=1).double()
    torch.testing.assert_close(torch.tensor(mean, dtype=torch.float64), pixels.mean(1))
    torch.testing.assert_close(torch.tensor(std, dtype=torch.float64), pixels.std(1, correction=0))
    shapes_mean, shapes_std = compute_mean_std(ShapesSegmentation("train", num_images=4))
    assert all(0.2 < m < 0.8 for m in shapes_mean) and all(0.1 < s < 0.4 for s in shapes_std)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: train_transforms(0), ValueError, "'crop_size' expected a positive int"),
        (lambda: train_transforms((10, 10, 3)), TypeError, "'crop_size' expected an int or a"),
        (lambda: train_transforms(8, scale_range=(0, 2)), ValueError, "'scale_range'"),
        (lambda: train_transforms(8, hflip_prob=1.5), ValueError, "'hflip_prob'"),
        (lambda: train_transforms(8, mean=IMAGENET_MEAN), ValueError, "pass both mean and std"),
        (lambda: eval_transforms(size=-2), ValueError, "'size' expected a positive int"),
        (lambda: Normalize(std=(0.2, 0.0, 0.1)), ValueError, "'std' expected positive values"),
        (lambda: Normalize(mean=(0.5, 0.5)), ValueError, "'std' expected 2 values"),
        (lambda: RandomScale((2.0, 1.0)), ValueError, "'scale_range'"),
        (lambda: PairTransform("flip"), TypeError, r"'steps\[0\]' expected a v2 transform"),
    ],
)
def test_transforms_reject_bad_arguments(build, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        build()


def test_pair_transform_rejects_bad_pairs() -> None:
    preset = eval_transforms()
    image, mask = _random_pair()
    with pytest.raises(TypeError, match="'image' expected a floating-point tensor"):
        preset((image * 255).to(torch.uint8), mask)
    with pytest.raises(TypeError, match="'mask' expected an integer tensor"):
        preset(image, mask.float())
    with pytest.raises(ValueError, match=r"'mask' expected shape \(40, 56\)"):
        preset(image, mask[:10])
    with pytest.raises(ValueError, match="'image' expected a 3-d tensor"):
        preset(image[None], mask)
    with pytest.raises(TypeError, match="'dataset' expected a map-style data set"):
        compute_mean_std(42)


# ---------------------------------------------------------------------------------------
# PASCAL VOC on a fake tree


def _palette_png(labels: np.ndarray, path: Path) -> None:
    png = Image.fromarray(labels.astype(np.uint8), mode="P")
    png.putpalette(voc_palette().numpy().ravel().tolist())
    png.save(path)


@pytest.fixture()
def fake_voc(tmp_path: Path) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """A two-image VOCdevkit/VOC2012 tree with palette masks that contain void (255)."""
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for name, (h, w) in {"2007_000032": (30, 40), "2007_000039": (36, 28)}.items():
        # Smooth images survive JPEG compression almost unchanged.
        rows, cols = np.mgrid[0:h, 0:w]
        pixels = np.stack([rows * 255 // h, cols * 255 // w, np.full((h, w), 120)], -1)
        Image.fromarray(pixels.astype(np.uint8)).save(voc / "JPEGImages" / f"{name}.jpg",
                                                      quality=95)
        labels = rng.integers(0, len(VOC_CLASSES), size=(h, w))
        labels[0, :] = 255
        labels[:, -2:] = 255
        _palette_png(labels, voc / "SegmentationClass" / f"{name}.png")
        written[name] = (pixels, labels)
    (voc / "ImageSets/Segmentation/train.txt").write_text("2007_000032\n2007_000039\n")
    (voc / "ImageSets/Segmentation/val.txt").write_text("2007_000039\n")
    return tmp_path, written


def test_voc_round_trip(fake_voc: tuple) -> None:
    root, written = fake_voc
    dataset = VOCSegmentation(root, "train")
    assert len(dataset) == 2 and dataset.classes == VOC_CLASSES and dataset.num_classes == 21
    assert dataset.palette.shape == (21, 3)
    for i, (pixels, labels) in enumerate(written.values()):
        image, mask = dataset[i]
        assert image.dtype == torch.float32 and image.shape == (3, *labels.shape)
        assert mask.dtype == torch.int64
        assert torch.equal(mask, torch.from_numpy(labels.astype(np.int64)))
        assert (mask == VOID_INDEX).any()
        reference = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
        assert (image - reference).abs().mean() < 0.02  # JPEG is lossy, but not by much
    assert len(VOCSegmentation(str(root), "val")) == 1


def test_voc_with_transforms(fake_voc: tuple) -> None:
    root, _ = fake_voc
    torch.manual_seed(0)
    dataset = VOCSegmentation(root, "train", transforms=train_transforms(32))
    image, mask = dataset[1]
    assert image.shape == (3, 32, 32) and mask.shape == (32, 32)
    assert set(mask.unique().tolist()) <= set(range(21)) | {VOID_INDEX}


def test_voc_rgb_masks_map_through_the_colormap() -> None:
    labels = np.array([[0, 1, 15], [20, 255, 7]])
    rgb = voc_palette().numpy()[labels]  # (2, 3, 3): colour of each label, void included
    decoded = voc_mask_to_labels(Image.fromarray(rgb, mode="RGB"))
    assert torch.equal(decoded, torch.from_numpy(labels))
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"colours outside the VOC colormap \(\(1, 2, 3\)\)"):
        voc_mask_to_labels(Image.fromarray(rgb, mode="RGB"))


def test_voc_palette_is_the_standard_colormap() -> None:
    palette = voc_palette()
    assert palette.shape == (256, 3) and palette.dtype == torch.uint8
    assert palette[1].tolist() == [128, 0, 0] and palette[15].tolist() == [192, 128, 128]
    assert palette[255].tolist() == [224, 224, 192]
    with pytest.raises(ValueError, match="'num_colors' expected an int in"):
        voc_palette(300)


def test_voc_bad_masks_and_missing_files(fake_voc: tuple, tmp_path: Path) -> None:
    root, _ = fake_voc
    voc = root / "VOCdevkit" / "VOC2012"
    labels = np.zeros((36, 28), dtype=np.uint8)
    labels[3, 3] = 30
    _palette_png(labels, voc / "SegmentationClass" / "2007_000039.png")
    dataset = VOCSegmentation(root, "train")
    with pytest.raises(ValueError, match=r"has values \[30\] but VOC has classes 0..20"):
        dataset[1]
    (voc / "JPEGImages" / "2007_000032.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"2007_000032\.jpg' is listed in"):
        dataset[0]


def test_voc_missing_root_explains_the_layout(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"VOCdevkit/VOC2012/JPEGImages.*download=True"):
        VOCSegmentation(tmp_path / "nowhere", "train")
    (tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages").mkdir(parents=True)
    (tmp_path / "VOCdevkit" / "VOC2012" / "SegmentationClass").mkdir()
    with pytest.raises(FileNotFoundError, match=r"Segmentation/train.txt' does not exist"):
        VOCSegmentation(tmp_path, "train")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"split": "test"}, ValueError, "'split' expected one of 'train', 'val', 'trainval'"),
        ({"year": 2012}, TypeError, "'year' expected a str such as '2012'.*year='2012'"),
        ({"year": "2013"}, ValueError, "'year' expected one of"),
        ({"root": 5}, TypeError, "'root' expected a path"),
        ({"download": "yes"}, TypeError, "'download' expected a bool"),
        ({"transforms": 3}, TypeError, "'transforms' expected a callable"),
    ],
)
def test_voc_rejects_bad_arguments(tmp_path: Path, kwargs: dict, error: type, match: str) -> None:
    kwargs = {"root": tmp_path, **kwargs}
    with pytest.raises(error, match=match):
        VOCSegmentation(**kwargs)
