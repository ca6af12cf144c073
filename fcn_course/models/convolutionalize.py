"""Turn a VGG-style classifier into a fully convolutional network.

The chapter "From classifier to fully convolutional network" explains the trick: a fully
connected layer that reads a ``C x k x k`` map is a ``k x k`` convolution with ``C`` input
channels, and the ones after it are ``1 x 1`` convolutions. Reshaping the weights (no
retraining) gives a network that computes the same logits on the classifier's own input size
and slides the classifier over larger inputs, emitting a coarse score map (output stride 32).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from fcn_course._validation import check_tensor, describe, fail
from fcn_course.models.geometry import CoordMap, chain, layer_map
from fcn_course.models.vgg import CourseVGG, FeatureInfo, vgg_from_torchvision

__all__ = ["ConvolutionalizedVGG", "convolutionalize", "linear_to_conv"]


def linear_to_conv(linear: nn.Linear, in_channels: int, kernel_size: int) -> nn.Conv2d:
    """A ``kernel_size x kernel_size`` convolution computing ``linear`` on each window.

    ``nn.Linear`` reads its input flattened from ``(C, k, k)`` in channel-major order, so
    its weight ``(out, C * k * k)`` is viewed as the convolution weight ``(out, C, k, k)``.
    """
    where = "linear_to_conv()"
    if not isinstance(linear, nn.Linear):
        raise fail(where, "linear", "an nn.Linear", describe(linear), "", error=TypeError)
    if linear.in_features != in_channels * kernel_size * kernel_size:
        raise fail(
            where, "linear", f"in_features = in_channels * kernel_size**2 = "
            f"{in_channels} * {kernel_size}**2 = {in_channels * kernel_size**2}",
            f"in_features = {linear.in_features}",
            "pass the channels and the side of the map the layer reads",
        )
    conv = nn.Conv2d(
        in_channels, linear.out_features, kernel_size, bias=linear.bias is not None,
        device=linear.weight.device, dtype=linear.weight.dtype,
    )
    with torch.no_grad():
        conv.weight.copy_(linear.weight.view(conv.weight.shape))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


class ConvolutionalizedVGG(nn.Module):
    """A VGG classifier with ``fc6``/``fc7``/``fc8`` as convolutions.

    ``forward`` maps ``(N, 3, H, W)`` to a score map ``(N, num_classes, h, w)`` with
    ``h = H/32 - k + 1`` (``k`` the side of fc6, ``H/32`` rounded as the pools round), a
    1x1 map on the classifier's own ``input_size``. ``forward_features`` also returns the
    pool outputs, which the FCN's skip connections read. ``fc8`` may be ``None`` (the FCN
    drops it: its classes are not the segmentation classes), and ``forward`` then returns
    the ``fc7`` features.
    """

    def __init__(
        self,
        features: nn.Sequential,
        fc6: nn.Conv2d,
        fc7: nn.Conv2d,
        fc8: nn.Conv2d | None,
        *,
        feature_info: list[FeatureInfo],
        input_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.features = features
        self.fc6 = fc6
        self.relu6 = nn.ReLU(inplace=True)
        self.drop6 = nn.Dropout(dropout)
        self.fc7 = fc7
        self.relu7 = nn.ReLU(inplace=True)
        self.drop7 = nn.Dropout(dropout)
        self.fc8 = fc8
        self.feature_info = [FeatureInfo(**f) for f in feature_info]
        self.input_size = input_size

    @property
    def num_classes(self) -> int | None:
        return None if self.fc8 is None else self.fc8.out_channels

    @property
    def out_channels(self) -> int:
        """Channels of the output: ``num_classes``, or fc7's width without ``fc8``."""
        return self.fc7.out_channels if self.fc8 is None else self.fc8.out_channels

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The pool outputs (``"pool1"`` ... ``"pool5"``) and ``"fc7"``, the last features."""
        check_tensor(
            f"{type(self).__name__}.forward()", "x", x, ndim=4, shape_hint="(N, 3, H, W)",
            channels=self.features[0].in_channels, floating=True,
        )
        taps = {f["name"] for f in self.feature_info}
        out: dict[str, torch.Tensor] = {}
        h = x
        for name, layer in self.features.named_children():
            h = layer(h)
            if name in taps:
                out[name] = h  # pool_s: (N, C_s, H/2**s, W/2**s)
        k = self.fc6.kernel_size
        p = self.fc6.padding
        if h.shape[-2] + 2 * p[0] < k[0] or h.shape[-1] + 2 * p[1] < k[1]:
            raise fail(
                f"{type(self).__name__}.forward()", "x",
                f"an image whose pool5 map is at least {k[0]}x{k[1]} (fc6's kernel), i.e. "
                f"about {self.input_size}x{self.input_size} pixels or more",
                f"{describe(x)} (pool5 is {h.shape[-2]}x{h.shape[-1]})",
                "use a larger image, or an FCN builder, whose fc6 is padded to accept any size",
            )
        h = self.drop6(self.relu6(self.fc6(h)))  # (N, C6, H/32 - k + 1 + 2p, ...)
        out["fc7"] = self.drop7(self.relu7(self.fc7(h)))  # (N, C7, same)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.forward_features(x)["fc7"]
        return h if self.fc8 is None else self.fc8(h)  # (N, num_classes, h, w)

    def coord_map(self, name: str) -> CoordMap:
        """Map from the pixels of blob ``name`` (a child of ``features``, ``"fc6"`` or
        ``"fc7"``) to input pixels; see :mod:`fcn_course.models.geometry`."""
        names = [n for n, _ in self.features.named_children()] + ["fc6", "fc7"]
        if name not in names:
            raise fail(
                "coord_map()", "name", f"a layer name such as {', '.join(names[-4:])}",
                repr(name), "pool names are listed in .feature_info",
            )
        path: list[nn.Module] = []
        for n, layer in self.features.named_children():
            path.append(layer)
            if n == name:
                return chain(layer_map(m) for m in path)
        path.append(self.fc6)
        if name == "fc7":
            path.append(self.fc7)
        return chain(layer_map(m) for m in path)


def convolutionalize(classifier: nn.Module) -> ConvolutionalizedVGG:
    """The classifier with its fully connected layers as convolutions, weights reshaped.

    ``fc6`` becomes a ``k x k`` convolution, ``k`` the side of the classifier's pool5 map
    (3 for the course's classifier at 96x96, 7 for VGG16), ``fc7`` and ``fc8`` become
    ``1 x 1``; all without padding, so on the classifier's own input size the result
    computes the same logits (in eval mode) as a ``(N, num_classes, 1, 1)`` map, and on a
    larger input a score map of the windows the classifier would see, stride 32 apart.

    Accepts a :class:`~fcn_course.models.vgg.CourseVGG` or a torchvision ``VGG``.
    torchvision's ``AdaptiveAvgPool2d((7, 7))`` is dropped: at 224x224 it is the identity;
    at any other size it would stretch pool5 to 7x7, which would tie each score to the
    whole image instead of to a 224-pixel window, the opposite of what a score map is for.
    The classifier is copied, never modified; the result keeps its train/eval mode.
    """
    where = "convolutionalize()"
    from torchvision.models import VGG

    if isinstance(classifier, VGG):
        classifier = vgg_from_torchvision(classifier)
    if not isinstance(classifier, CourseVGG):
        raise fail(
            where, "classifier",
            "a VGG-style classifier: fcn_course.models.course_vgg(...) or "
            "torchvision.models.vgg16(...)",
            type(classifier).__name__,
            "other architectures have no fc6/fc7/fc8 to convert; for a ResNet, torchvision's "
            "segmentation models replace the pooled fc layer differently",
            error=TypeError,
        )
    head = classifier.classifier
    channels = classifier.feature_info[-1]["channels"]
    k = classifier.pool5_size
    fc6 = linear_to_conv(head.fc6, channels, k)  # (N, C5, k, k) window -> (N, C6, 1, 1)
    fc7 = linear_to_conv(head.fc7, head.fc6.out_features, 1)
    fc8 = linear_to_conv(head.fc8, head.fc7.out_features, 1)
    result = ConvolutionalizedVGG(
        copy.deepcopy(classifier.features), fc6, fc7, fc8,
        feature_info=classifier.feature_info, input_size=classifier.input_size,
        dropout=head.drop6.p,
    )
    result.train(classifier.training)
    return result
