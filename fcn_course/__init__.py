"""fcn_course: the companion package of the course on Fully Convolutional Networks.

Every model, layer, loss, metric, data set and exercise checker that the book and the
exercises use lives here; the chapters import it rather than defining second copies.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
