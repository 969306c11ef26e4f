"""Promise: SAM2ENC_PRECISION picks the encoder's arithmetic at setup, the CPU serves fp32, the manifest says
which one computed a bundle, and the fp16 encoder stays near SAM2's fp32 features (a CPU sanity row; the
GPU numbers come from tools/bench_gpu.py). About 20 s on 2 cores, most of it the fp16 conversion."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from sam2enc.bundle import TENSORS, read_bundle
from sam2enc.encoder import Encoder
from sam2enc.errors import SettingError
from sam2enc.export import relative_l2
from sam2enc.modeldir import ENCODER_FILE, MODEL_INFO_FILE
from sam2enc.pipeline import encode_to_dir
from sam2enc.precision import PRECISION_ENV, cuda_options, fp16_encoder
from tests.conftest import upright_rgb


def test_bad_precision_is_one_sentence(models_dir, monkeypatch):
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    with pytest.raises(
        SettingError, match=r"^\$SAM2ENC_PRECISION must be one of fp32, tf32, fp16, got 'bf16'$"
    ) as err:
        Encoder(models_dir, device="cpu")
    assert str(err.value).count(". ") == 0 and "\n" not in str(err.value)


@pytest.mark.parametrize("asked", ["tf32", "fp16"])
def test_the_cpu_serves_fp32_with_one_warning(asked, models_dir, monkeypatch, caplog):
    monkeypatch.setenv(PRECISION_ENV, asked.upper())  # case does not matter
    with caplog.at_level(logging.WARNING, logger="sam2enc.encoder"):
        encoder = Encoder(models_dir, device="cpu")
    assert encoder.precision == "fp32"
    assert [r.getMessage() for r in caplog.records] == [
        f"precision {asked} was asked for, but the CPU computes fp32: serving fp32"
    ]


def test_cuda_options_follow_the_precision():
    assert cuda_options("tf32") == {"use_tf32": "1"}
    assert cuda_options("fp32") == cuda_options("fp16") == {"use_tf32": "0"}  # fp16: no TF32 in fp32 ops


def test_precision_reaches_the_cuda_provider(models_dir, monkeypatch, caplog):
    """With a CUDA provider on offer, tf32 asks it for use_tf32=1; when it does not load, fp32 is served."""
    import sam2enc.encoder as encoder_module

    asked = []
    real = encoder_module.create_session

    def spy(path, device="auto", threads=None, spinning=True, cuda=None):
        asked.append((path.name, cuda))
        return real(path, "cpu", threads, spinning)

    monkeypatch.setattr(encoder_module, "create_session", spy)
    monkeypatch.setattr(encoder_module.ort, "get_available_providers", lambda: ["CUDAExecutionProvider"])
    with caplog.at_level(logging.WARNING, logger="sam2enc.encoder"):
        encoder = Encoder(models_dir, device="auto", precision="tf32", preprocessing="host")
    assert asked[0] == (ENCODER_FILE, {"use_tf32": "1"})
    assert encoder.precision == "fp32" and "needs CUDA, which did not load" in caplog.text


def test_manifest_records_the_precision(encoder, photos, tmp_path, monkeypatch):
    monkeypatch.setattr(encoder, "precision", "tf32")  # as chosen on CUDA; the CPU computes the same here
    out = encode_to_dir(photos["coffee"], encoder, tmp_path / "bundle")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"] == "tf32" and manifest["version"] == 1
    assert read_bundle(out).precision == "tf32"
    # a version-1 manifest written before the field existed reads as fp32 (all of them were)
    del manifest["precision"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert read_bundle(out).precision == "fp32"


def test_fp16_encoder_stays_near_sam2(models_dir, photos, predictor, tmp_path, report):
    """The fp16 graph (LayerNorm/Softmax fp32) on the CPU provider: its distance to SAM2's fp32 features."""
    from sam2enc.encoder import create_session
    from sam2enc.preprocess import preprocess
    from tests.reference import predictor_features

    for name in (ENCODER_FILE, MODEL_INFO_FILE):  # a private copy: the conversion writes beside encoder.onnx
        (tmp_path / name).symlink_to(models_dir / name)
    path = fp16_encoder(tmp_path)
    assert path == tmp_path / "encoder_fp16.onnx" and fp16_encoder(tmp_path) == path  # made once
    rgb = upright_rgb(photos["astronaut"])
    predictor.set_image(rgb)
    expected = predictor_features(predictor)
    session = create_session(path, "cpu")
    ours = dict(zip(TENSORS, session.run(list(TENSORS), {"image": preprocess(rgb)})))
    errors = {name: relative_l2(np.asarray(ours[name], np.float32), expected[name]) for name in TENSORS}
    report(
        {
            "photo": "astronaut",
            "precision": "fp16 (CPU provider)",
            **{k: f"{v:.2e}" for k, v in errors.items()},
        }
    )
    assert max(errors.values()) < 3e-3
