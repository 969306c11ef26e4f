"""The JS module's float16 → float32 table, all 65,536 values, held to NumPy (tests/js/half.test.mjs)."""

from __future__ import annotations

import numpy as np
import pytest

from sam2enc.bundle import TENSORS, Bundle, write_bundle
from tests.node import node_test

pytestmark = pytest.mark.node


def test_every_half_value_converts_like_numpy(tmp_path):
    halves = np.arange(65536, dtype=np.uint16).view(np.float16)
    features = {name: np.zeros(shape, np.float16) for name, shape in TENSORS.items()}
    features["image_embed"].reshape(-1)[:65536] = halves
    model = {"name": "sam2.1_hiera_tiny", "checkpointSha256": None}
    write_bundle(Bundle(features, 64, 64, model, "CPUExecutionProvider"), tmp_path / "bundle")
    (tmp_path / "bundle" / "expected.f32").write_bytes(halves.astype("<f4").tobytes())
    node_test("half.test.mjs", env={"SAM2ENC_HALF_FIXTURES": str(tmp_path / "bundle")})
