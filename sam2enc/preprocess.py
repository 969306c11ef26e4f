"""RGB array → the encoder's input: SAM2Transforms arithmetic without torch or torchvision.

SAM2ImagePredictor runs ``ToTensor`` (uint8 → float in [0, 1]), ``Resize((1024, 1024))`` — which on a
float tensor is ``interpolate(mode="bilinear", antialias=True, align_corners=False)``, aspect ratio not
kept — then ``Normalize`` with ImageNet statistics. torch's antialiased bilinear kernel is a port of
Pillow's resampling, so Pillow's BILINEAR resize of a 32-bit float ("F") image computes the same
weights. The values must be resized as floats: resizing the uint8 pixels (Pillow's 8-bit path rounds
after each pass) moves the features by ~7e-3 relative L2. Resizing is linear, so the division by 255
can follow it; the result differs from ToTensor's order by float rounding only (~1e-7).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from .bundle import INPUT_SIZE

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Each channel in flight holds a float copy of the image (4 bytes/pixel): above this size they resize
# one after another, which keeps a 120 MP upload near 1 GB instead of 2.5 GB.
PARALLEL_MAX_PIXELS = 16_000_000

# Pillow releases the GIL while converting and resampling, so channels resize in parallel.
_POOL = ThreadPoolExecutor(max_workers=3, thread_name_prefix="sam2enc-resize")


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 → (1, 3, 1024, 1024) float32, normalised, C-contiguous."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}")
    out = np.empty((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    if rgb.shape[0] * rgb.shape[1] <= PARALLEL_MAX_PIXELS:
        list(_POOL.map(lambda c: _resize_channel(rgb, c, out), range(3)))
    else:
        for channel in range(3):
            _resize_channel(rgb, channel, out)
    return out


def _resize_channel(rgb: np.ndarray, channel: int, out: np.ndarray) -> None:
    plane = Image.fromarray(np.ascontiguousarray(rgb[:, :, channel])).convert("F")
    resized = np.asarray(plane.resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR), dtype=np.float32)
    del plane
    # ((x / 255) - mean) / std, in float32 as torchvision does it
    target = out[0, channel]
    np.divide(resized, np.float32(255.0), out=target)
    np.subtract(target, MEAN[channel], out=target)
    np.divide(target, STD[channel], out=target)
