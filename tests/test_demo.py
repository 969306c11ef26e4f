"""`make demo` runs the whole chain on the bundled photo and leaves a mask people can look at."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sam2enc.bundle import read_bundle

pytestmark = pytest.mark.slow


def test_demo_writes_bundle_mask_and_overlay(models_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tools.demo", "--models-dir", str(models_dir), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "IoU predictions" in result.stdout
    bundle = read_bundle(tmp_path)
    assert (bundle.original_width, bundle.original_height) == (512, 512)
    mask = np.asarray(Image.open(tmp_path / "mask.png"))
    assert mask.shape == (512, 512) and set(np.unique(mask)) <= {0, 255}
    assert Image.open(tmp_path / "overlay.png").size == (512, 512)
