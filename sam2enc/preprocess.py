"""RGB array → the encoder's input: SAM2Transforms arithmetic without torch or torchvision.

SAM2ImagePredictor runs ``ToTensor`` (uint8 → float in [0, 1]), ``Resize((1024, 1024))`` — which on a
float tensor is ``interpolate(mode="bilinear", antialias=True, align_corners=False)``, aspect ratio not
kept — then ``Normalize`` with ImageNet statistics. torch's antialiased bilinear kernel is a port of
Pillow's resampling, so Pillow's BILINEAR resize of a 32-bit float ("F") image computes the same
weights; the values must be resized as floats: resizing the uint8 pixels and dividing afterwards moves
the features by ~7e-3 relative L2.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from .bundle import INPUT_SIZE

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

# Pillow releases the GIL while resampling, so the three channels resize in parallel.
_POOL = ThreadPoolExecutor(max_workers=3, thread_name_prefix="sam2enc-resize")


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 → (1, 3, 1024, 1024) float32, normalised, C-contiguous."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}")
    out = np.empty((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    list(_POOL.map(lambda c: _resize_channel(rgb, c, out), range(3)))
    return out


def _resize_channel(rgb: np.ndarray, channel: int, out: np.ndarray) -> None:
    # ToTensor divides in float32; Pillow then resamples the float plane with double-precision weights.
    plane = np.divide(rgb[:, :, channel], np.float32(255.0), dtype=np.float32)
    resized = Image.fromarray(plane).resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR)
    target = out[0, channel]
    np.subtract(np.asarray(resized, dtype=np.float32), MEAN[channel], out=target)
    np.divide(target, STD[channel], out=target)
