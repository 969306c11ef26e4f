"""Small helpers several test files share: mask overlap, a downloaded mask PNG, the sam2enc command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of one shape; two empty masks agree (1.0)."""
    assert a.shape == b.shape, (a.shape, b.shape)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def png_mask(path: Path) -> np.ndarray:
    """A mask PNG as `sam2enc decode` and the page write it (8-bit grayscale, 0/255) → bool array."""
    with Image.open(path) as image:
        assert image.mode == "L", image.mode
        values = np.asarray(image)
    assert set(np.unique(values)) <= {0, 255}, np.unique(values)
    return values == 255


def cli(*args: object) -> subprocess.CompletedProcess:
    """``python -m sam2enc ARGS`` from the repository root, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "sam2enc", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
