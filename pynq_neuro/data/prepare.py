"""MNIST-style preparation of a picture of one digit (numpy only; Pillow to read image files).

MNIST digits are white on black, scaled so that the larger side of their bounding box is 20
pixels (aspect ratio kept, anti-aliased) and placed in a 28x28 field so that their centre of
mass lies at pixel (14, 14). :func:`prepare_digit` does the same to a photograph, scan or
drawing: it converts to grayscale, inverts dark ink on a light background, stretches the
contrast between the background and the ink, crops to the ink, resizes and centres. Arrays
need numpy only (the board); PNG and JPEG files need Pillow
(``pip install 'pynq-neuro[images]'``).
"""

from __future__ import annotations

import os
from typing import Union

import numpy as np

from .idx import DataError

__all__ = ["BOX", "FIELD", "prepare_digit", "read_image"]

FIELD = 28           # side of the output field
BOX = 20             # larger side of the digit's bounding box
CENTRE = 14.0        # centre of mass of an MNIST digit (pixel-index coordinates)
INK = 0.15           # share of the full ink level that counts for the bounding box
MIN_CONTRAST = 8.0   # ink minus background, in 8-bit levels, below which a picture is blank
MAX_PIXELS = 40_000_000
MAX_FILE_BYTES = 64 << 20

ImageLike = Union[str, "os.PathLike[str]", np.ndarray]


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """The pixels of a PNG, JPEG or other image file Pillow reads, as float64 grayscale
    (0 black .. 255 white); transparent pixels count as white. Needs Pillow."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError(f"reading {path} needs Pillow (pip install 'pynq-neuro[images]'); "
                        f"or pass the pixels as a numpy array") from None
    from ..fileio import UnsafeFileError, read_regular

    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist") from None
    except (OSError, UnsafeFileError) as e:
        raise DataError(f"cannot read image {path}: {getattr(e, 'strerror', None) or e}") from None
    import io

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, rgba)
            return np.asarray(img.convert("L"), dtype=np.float64)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path} is not a readable image ({e})") from None


def _grayscale(image: np.ndarray) -> np.ndarray:
    """float64 (H, W) levels 0..255 of a 2-D gray or 3-D RGB(A) array (integers 0..255, or
    floats 0..1 when none exceeds 1)."""
    x = np.asarray(image)
    if x.size > MAX_PIXELS * 4:
        raise DataError(f"the image has {x.size} values, more than {MAX_PIXELS * 4}")
    if x.dtype == bool:
        x = x.astype(np.uint8) * 255
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"an image is an array of numbers, got dtype {x.dtype}")
    if not (x.ndim == 2 or (x.ndim == 3 and x.shape[2] in (3, 4))) or min(x.shape) < 1:
        raise DataError(f"an image is a 2-D gray or (H, W, 3|4) colour array, got shape "
                        f"{x.shape}")
    integer = np.issubdtype(x.dtype, np.integer)
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise DataError("the image holds values that are not finite")
    full = 255.0 if integer or x.max() > 1.0 else 1.0
    if x.ndim == 3:
        if x.shape[2] == 4:  # transparent pixels count as white
            alpha = x[..., 3:] / full
            x = x[..., :3] * alpha + full * (1.0 - alpha)
        x = x[..., :3] @ np.array([0.299, 0.587, 0.114])
    return x * (255.0 / full)


def _weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) resampling matrix: area averaging when shrinking, linear interpolation
    (pixel centres aligned) when enlarging; rows sum to 1."""
    if n_out <= n_in:
        edges = np.arange(n_out + 1) * (n_in / n_out)
        lo, hi = edges[:-1, None], edges[1:, None]
        src = np.arange(n_in)[None, :]
        w = np.clip(np.minimum(hi, src + 1) - np.maximum(lo, src), 0, None)
    else:
        pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        left = np.floor(pos).astype(int)
        frac = pos - left
        w = np.zeros((n_out, n_in))
        w[np.arange(n_out), left] += 1 - frac
        w[np.arange(n_out), np.minimum(left + 1, n_in - 1)] += frac
    return w / w.sum(axis=1, keepdims=True)


def _centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    total = x.sum()
    return (float(x.sum(axis=1) @ np.arange(x.shape[0]) / total),
            float(x.sum(axis=0) @ np.arange(x.shape[1]) / total))


def prepare_digit(image: ImageLike) -> np.ndarray:
    """A picture of one digit as an MNIST digit: uint8 (28, 28), white ink on black.

    ``image``: a file path (PNG, JPEG, ...; needs Pillow) or an array, 2-D gray or (H, W, 3|4)
    colour, integers 0..255 or floats 0..1. Steps: grayscale; the background level is the
    median of the border, and the picture is inverted when the ink departs from it towards
    black; subtract the background level and stretch the ink to 255; crop to the pixels
    above ``INK`` of it; resize so that the larger side is 20 pixels; place in 28x28 with the
    centre of mass at (14, 14). Raises :class:`DataError` for an unreadable or blank picture.
    """
    x = read_image(image) if isinstance(image, (str, os.PathLike)) else _grayscale(image)
    if x.size > MAX_PIXELS:
        raise DataError(f"the image has {x.size} pixels, more than {MAX_PIXELS}")
    background = float(np.median(np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])))
    if background - x.min() > x.max() - background:   # ink darker than the background
        x, background = 255.0 - x, 255.0 - background
    ink = float(x.max())
    if ink - background < MIN_CONTRAST:
        raise DataError(f"the image is blank: ink and background differ by "
                        f"{ink - background:.1f} of 255 levels")
    x = np.clip((x - background) / (ink - background), 0.0, 1.0)
    rows = np.flatnonzero((x > INK).any(axis=1))
    cols = np.flatnonzero((x > INK).any(axis=0))
    x = x[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = x.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    x = _weights(h, nh) @ x @ _weights(w, nw).T
    field = np.zeros((FIELD, FIELD))
    top, left = (FIELD - nh) // 2, (FIELD - nw) // 2
    field[top:top + nh, left:left + nw] = x
    cy, cx = _centre_of_mass(field)
    dy, dx = int(round(CENTRE - cy)), int(round(CENTRE - cx))
    # keep the whole box inside the field
    dy = min(max(dy, -top), FIELD - nh - top)
    dx = min(max(dx, -left), FIELD - nw - left)
    field = np.roll(field, (dy, dx), axis=(0, 1))
    return np.clip(np.rint(field * 255.0), 0, 255).astype(np.uint8)


def prepare_digits(images: list[ImageLike]) -> np.ndarray:
    """:func:`prepare_digit` of each, stacked: uint8 (N, 28, 28)."""
    return np.stack([prepare_digit(i) for i in images]) if images else \
        np.zeros((0, FIELD, FIELD), np.uint8)
