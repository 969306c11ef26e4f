"""Decoded upload → the encoder's input: SAM2Transforms arithmetic without torch or torchvision.

SAM2ImagePredictor runs ``ToTensor`` (uint8 → float in [0, 1]), ``Resize((1024, 1024))`` — which on a
float tensor is ``interpolate(mode="bilinear", antialias=True, align_corners=False)``, aspect ratio not
kept — then ``Normalize`` with ImageNet statistics, on the upright image.

- torch's antialiased bilinear kernel is a port of Pillow's resampling, so Pillow's BILINEAR resize of
  a 32-bit float ("F") image computes the same weights. The values must be resized as floats: resizing
  the uint8 pixels (Pillow's 8-bit path rounds after each pass) moves the features by ~7e-3 relative L2.
- Resizing is linear, so dividing by 255 after it differs from ToTensor's order by float rounding only.
- The EXIF orientation is applied to the 1024×1024 result: flips and quarter turns commute with a
  resize to a square (the filter is symmetric and per-axis), and turning the small result is far
  cheaper than turning a 12 MP photo first.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from .bundle import INPUT_SIZE
from .image import LoadedImage

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Each channel in flight holds a float copy of the image (4 bytes/pixel): above this size they resize
# one after another, which keeps a 120 MP upload near 1 GB instead of 2.5 GB.
PARALLEL_MAX_PIXELS = 16_000_000

# Pillow releases the GIL while converting and resampling, so channels resize in parallel.
_POOL = ThreadPoolExecutor(max_workers=3, thread_name_prefix="sam2enc-resize")


def preprocess(image: LoadedImage | np.ndarray) -> np.ndarray:
    """A loaded image, or an upright (H, W, 3) uint8 array → (1, 3, 1024, 1024) float32, normalised."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 array, got {image.dtype} {image.shape}")
        pixels, orientation = Image.fromarray(image), None
    else:
        pixels, orientation = image.pixels, image.orientation
    out = np.empty((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)

    def channel(c: int) -> None:
        _resize_channel(pixels, c, orientation, out[0, c], MEAN[c], STD[c])

    if pixels.width * pixels.height <= PARALLEL_MAX_PIXELS:
        list(_POOL.map(channel, range(3)))
    else:
        for c in range(3):
            channel(c)
    return out


def _resize_channel(pixels, c: int, orientation, target: np.ndarray, mean, std) -> None:
    plane = pixels.getchannel(c).convert("F")
    resized = plane.resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR)
    del plane
    if orientation is not None:
        resized = resized.transpose(orientation)
    # ((x / 255) - mean) / std, in float32 as torchvision does it
    np.divide(np.asarray(resized, dtype=np.float32), np.float32(255.0), out=target)
    np.subtract(target, mean, out=target)
    np.divide(target, std, out=target)
