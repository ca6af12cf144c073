"""PASCAL VOC segmentation through torchvision, in the same ``(image, mask)`` contract.

The FCN paper trains and evaluates on PASCAL VOC 2011/2012. The chapter "Scaling up" uses
this wrapper for readers who have the data (about 2 GB; ``download=True`` needs a network).
It returns what :class:`~fcn_course.data.ShapesSegmentation` returns: image float32
``(3, H, W)`` in ``[0, 1]``, mask int64 ``(H, W)`` with labels in ``range(21)`` or 255 for
the void outlines and "difficult" regions, so every model, loss and metric of the course
runs on it unchanged.

VOC masks are palette PNGs: the pixel values are already class indices (255 = void) and the
palette only colours them for display. Masks saved as RGB images (as some tools export them)
are mapped back to indices through the standard VOC colormap, with (224, 224, 192) -> 255.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchvision.datasets
from PIL import Image
from torch.utils.data import Dataset

from fcn_course._validation import check_choice, describe, fail
from fcn_course.data.shapes import VOID_INDEX, _item_index

__all__ = [
    "VOC_CLASSES",
    "VOC_VOID_COLOR",
    "VOCSegmentation",
    "voc_mask_to_labels",
    "voc_palette",
]

VOC_CLASSES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)

VOC_VOID_COLOR: tuple[int, int, int] = (224, 224, 192)
"""Display colour of the void label 255 in VOC's colormap."""

_VOC_YEARS = ("2007", "2008", "2009", "2010", "2011", "2012")


def voc_palette(num_colors: int = 256) -> torch.Tensor:
    """The standard PASCAL VOC colormap: uint8 ``(num_colors, 3)``, index 255 = (224, 224, 192).

    Colour ``i`` spreads the bits of ``i`` over the three channels, most significant first,
    which keeps neighbouring labels far apart in colour.
    """
    if isinstance(num_colors, bool) or not isinstance(num_colors, int):
        raise fail("voc_palette()", "num_colors", "an int in [1, 256]", describe(num_colors), "",
                   error=TypeError)
    if not 1 <= num_colors <= 256:
        raise fail("voc_palette()", "num_colors", "an int in [1, 256]", repr(num_colors),
                   "VOC palette PNGs hold at most 256 colours")
    index = np.arange(num_colors)
    palette = np.zeros((num_colors, 3), dtype=np.uint8)
    for bit in range(8):
        for channel in range(3):
            palette[:, channel] |= (((index >> (3 * bit + channel)) & 1) << (7 - bit)).astype(
                np.uint8
            )
    return torch.from_numpy(palette)


def _rgb_codes(colors: np.ndarray) -> np.ndarray:
    """Pack ``(..., 3)`` uint8 colours into one int per colour."""
    colors = colors.astype(np.int64)
    return (colors[..., 0] << 16) | (colors[..., 1] << 8) | colors[..., 2]


def voc_mask_to_labels(mask: Image.Image, *, name: str = "mask") -> torch.Tensor:
    """Class indices int64 ``(H, W)`` of a VOC mask image (palette, greyscale or RGB).

    Palette ("P") and greyscale ("L") masks already hold indices. RGB masks are decoded
    through :func:`voc_palette`, the void colour (224, 224, 192) becoming 255. Values other
    than ``0..20`` and 255 raise a ``ValueError`` naming ``name`` (e.g. the file).
    """
    where = "voc_mask_to_labels()"
    if not isinstance(mask, Image.Image):
        raise fail(where, "mask", "a PIL image", describe(mask),
                   "open the file with PIL.Image.open(path)", error=TypeError)
    num_classes = len(VOC_CLASSES)
    if mask.mode in ("P", "L"):
        labels = np.asarray(mask, dtype=np.uint8)  # palette indices are the labels
    elif mask.mode in ("RGB", "RGBA"):
        rgb = np.asarray(mask.convert("RGB"))  # (H, W, 3)
        colors = voc_palette(num_classes).numpy()
        known = np.concatenate([_rgb_codes(colors), _rgb_codes(np.array(VOC_VOID_COLOR))[None]])
        values = np.concatenate([np.arange(num_classes), [VOID_INDEX]])
        order = np.argsort(known)
        codes = _rgb_codes(rgb)
        slot = np.clip(np.searchsorted(known[order], codes), 0, len(known) - 1)
        matched = known[order][slot] == codes
        if not matched.all():
            strange = np.unique(rgb[~matched], axis=0)[:5]
            listed = ", ".join(str(tuple(int(c) for c in color)) for color in strange)
            raise ValueError(
                f"{where}: {name} is an RGB mask with colours outside the VOC colormap "
                f"({listed}); save masks as palette PNGs of class indices, or use only the "
                f"colours of voc_palette() and {VOC_VOID_COLOR} for void"
            )
        labels = values[order][slot]
    else:
        raise ValueError(
            f"{where}: {name} has PIL mode {mask.mode!r}, expected 'P' (palette), 'L' or 'RGB'; "
            "save masks as palette PNGs of class indices"
        )
    bad = (labels >= num_classes) & (labels != VOID_INDEX)
    if bad.any():
        strange = sorted({int(v) for v in np.unique(labels[bad])})[:8]
        raise ValueError(
            f"{where}: {name} has values {strange} but VOC has classes 0..{num_classes - 1}; "
            f"mark unlabelled pixels with {VOID_INDEX} (void)"
        )
    return torch.from_numpy(labels.astype(np.int64))


def _voc_folder(year: str) -> str:
    """Where a year's data lives below ``root`` (VOC 2011 ships inside a "TrainVal" folder)."""
    folder = os.path.join("VOCdevkit", f"VOC{year}")
    return os.path.join("TrainVal", folder) if year == "2011" else folder


class VOCSegmentation(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """PASCAL VOC semantic segmentation in the course's ``(image, mask)`` contract.

    Wraps :class:`torchvision.datasets.VOCSegmentation`; images come back float32
    ``(3, H, W)`` in ``[0, 1]``, masks int64 ``(H, W)`` in ``range(21)`` or 255 (void).

    Args:
        root: the folder that *contains* ``VOCdevkit`` (``root/VOCdevkit/VOC2012/...``).
        split: ``"train"``, ``"val"`` or ``"trainval"`` (and ``"test"`` for 2007): the list
            ``ImageSets/Segmentation/<split>.txt``.
        year: ``"2007"`` to ``"2012"``; the FCN paper evaluates on 2011/2012.
        transforms: optional callable ``(image, mask) -> (image, mask)``.
        download: fetch and unpack the archive into ``root`` first (about 2 GB; needs a
            network connection, which the course's build and test machines do not have).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        year: str = "2012",
        transforms: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
        | None = None,
        download: bool = False,
    ) -> None:
        where = "VOCSegmentation()"
        if not isinstance(root, str | os.PathLike):
            raise fail(where, "root", "a path (str or pathlib.Path)", describe(root),
                       "pass the folder that contains VOCdevkit", error=TypeError)
        if not isinstance(year, str):
            raise fail(where, "year", "a str such as '2012'", describe(year),
                       f"pass year={str(year)!r}", error=TypeError)
        check_choice(where, "year", year, _VOC_YEARS)
        splits = ("train", "val", "trainval", *(("test",) if year == "2007" else ()))
        check_choice(where, "split", split, splits)
        if not isinstance(download, bool):
            raise fail(where, "download", "a bool", describe(download), "", error=TypeError)
        if transforms is not None and not callable(transforms):
            raise fail(where, "transforms", "a callable or None", describe(transforms), "",
                       error=TypeError)
        self.root = Path(root)
        self.split = split
        self.year = year
        self.transforms = transforms
        self.classes: tuple[str, ...] = VOC_CLASSES
        self.palette = voc_palette(len(VOC_CLASSES))  # (21, 3)
        if not download:
            self._check_layout(where)

        try:
            self.base = torchvision.datasets.VOCSegmentation(
                str(self.root), year=year, image_set=split, download=download
            )
        except OSError as error:  # URLError and a refused connection are both OSErrors
            if not download:
                raise
            raise RuntimeError(
                f"{where}: downloading PASCAL VOC {year} into {str(self.root)!r} failed ({error}); "
                "download=True needs a network connection. Fetch the archive on a machine that "
                "has one and unpack it so that root/VOCdevkit exists, then pass download=False"
            ) from error

    def _check_layout(self, where: str) -> None:
        """Raise FileNotFoundError naming the first missing part of the expected layout."""
        folder = _voc_folder(self.year)
        needed = [
            "",
            folder,
            os.path.join(folder, "JPEGImages"),
            os.path.join(folder, "SegmentationClass"),
            os.path.join(folder, "ImageSets", "Segmentation", f"{self.split}.txt"),
        ]
        for part in needed:
            path = self.root / part
            if not (path.is_file() if part.endswith(".txt") else path.is_dir()):
                layout = (
                    f"{folder}/JPEGImages/*.jpg, {folder}/SegmentationClass/*.png and "
                    f"{folder}/ImageSets/Segmentation/{self.split}.txt below it"
                )
                raise fail(
                    where, "root", f"a folder with {layout}",
                    f"{str(self.root)!r}, where {str(path)!r} does not exist",
                    "point root at the folder that contains VOCdevkit, or pass download=True "
                    "(about 2 GB; needs a network connection)",
                    error=FileNotFoundError,
                )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def images(self) -> list[str]:
        """Paths of the JPEG images, in item order."""
        return list(self.base.images)

    @property
    def masks(self) -> list[str]:
        """Paths of the mask PNGs, in item order."""
        return list(self.base.masks)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = _item_index("VOCSegmentation[]", index, len(self))
        image_path, mask_path = self.base.images[i], self.base.masks[i]
        for path in (image_path, mask_path):
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"VOCSegmentation[{i}]: {path!r} is listed in "
                    f"ImageSets/Segmentation/{self.split}.txt but does not exist; restore the "
                    "file or remove its name from the list"
                )
        with Image.open(image_path) as raw:
            pixels = np.asarray(raw.convert("RGB"))  # (H, W, 3) uint8
        image = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255.0)
        with Image.open(mask_path) as raw:
            mask = voc_mask_to_labels(raw, name=repr(mask_path))
        if mask.shape != image.shape[1:]:
            raise ValueError(
                f"VOCSegmentation[{i}]: mask {mask_path!r} is {tuple(mask.shape)} but its image "
                f"is {tuple(image.shape[1:])} (H, W); masks must match their image pixel for pixel"
            )
        if self.transforms is not None:
            image, mask = self.transforms(image, mask)
        return image, mask

    def __repr__(self) -> str:
        return f"VOCSegmentation(root={str(self.root)!r}, split={self.split!r}, year={self.year!r})"
