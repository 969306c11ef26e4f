"""Preprocessing above 16 MP resizes one channel at a time (memory) and must compute the same floats."""

from __future__ import annotations

import numpy as np
from PIL import Image

import sam2enc.preprocess as preprocess_module
from sam2enc.image import load_image
from sam2enc.preprocess import PARALLEL_MAX_PIXELS, preprocess


def test_one_channel_at_a_time_above_16_mp_gives_the_same_input(photos, tmp_path, monkeypatch):
    big = tmp_path / "big.jpg"
    width, height = 5200, 3468  # 18 MP, EXIF-rotated as phones store it
    assert width * height > PARALLEL_MAX_PIXELS
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(photos["rocket"]).convert("RGB").resize((width, height), Image.BICUBIC).save(
        big, quality=90, exif=exif
    )
    loaded = load_image(big)
    serial = preprocess(loaded)
    monkeypatch.setattr(preprocess_module, "PARALLEL_MAX_PIXELS", 10**12)  # force the parallel branch
    parallel = preprocess(loaded)
    np.testing.assert_array_equal(serial, parallel)
    upright = preprocess(loaded.rgb)  # orientation applied before the resize, the obvious way
    np.testing.assert_allclose(serial, upright, atol=2e-5)
