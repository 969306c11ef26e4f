"""predict.py called the way Cog calls it, in-process: every argument passed, files checked byte for byte."""

from __future__ import annotations

import asyncio
import json

import pytest
from cog import Path

from sam2enc.bundle import EMBEDDING_FILE, MANIFEST_FILE, read_bundle, write_bundle
from sam2enc.errors import ImageError, ModelError
from sam2enc.pipeline import encode


@pytest.fixture(scope="module")
def predictor(models_dir):
    import os

    from predict import Predictor

    os.environ["SAM2ENC_MODELS_DIR"] = str(models_dir)
    try:
        runner = Predictor()
        runner.setup()
    finally:
        del os.environ["SAM2ENC_MODELS_DIR"]
    return runner


def predict(predictor, image) -> list[Path]:
    """Cog awaits the async run(): so do we, on a fresh event loop."""
    return asyncio.run(predictor.run(image=Path(image)))


def test_returns_the_two_files_by_name(predictor, photos):
    embedding, manifest = predict(predictor, photos["rocket"])
    assert isinstance(embedding, Path) and isinstance(manifest, Path)
    assert (embedding.name, manifest.name) == (EMBEDDING_FILE, MANIFEST_FILE)
    assert embedding.parent == manifest.parent


def test_bundle_is_byte_identical_to_the_library(predictor, photos, encoder, tmp_path):
    embedding, manifest = predict(predictor, photos["chelsea_exif6"])
    reference = write_bundle(encode(photos["chelsea_exif6"], encoder), tmp_path / "ref")
    assert embedding.read_bytes() == (reference / EMBEDDING_FILE).read_bytes()
    served, ours = json.loads(manifest.read_text()), json.loads((reference / MANIFEST_FILE).read_text())
    assert served == ours
    assert (served["originalWidth"], served["originalHeight"]) == (451, 300)


def test_the_manifest_names_the_uploaded_photo_by_its_bytes(predictor, photos):
    """source.sha256 is the upload as it came (before EXIF rotation or decoding): what a client has."""
    import hashlib

    _, manifest = predict(predictor, photos["chelsea_exif6"])
    digest = hashlib.sha256(photos["chelsea_exif6"].read_bytes()).hexdigest()
    assert json.loads(manifest.read_text())["source"] == {"sha256": digest}


def test_each_prediction_gets_its_own_directory(predictor, photos):
    first, _ = predict(predictor, photos["rocket"])
    second, _ = predict(predictor, photos["coffee"])
    assert first.parent != second.parent
    assert read_bundle(first.parent).original_width == 640
    assert read_bundle(second.parent).original_width == 600


def test_a_failed_prediction_leaves_nothing_behind(predictor, photos, tmp_path):
    before = set(predictor.service.root.iterdir())
    bad = tmp_path / "upload"
    bad.write_bytes(photos["rocket"].read_bytes()[:5000])  # a JPEG cut off mid-download
    with pytest.raises(ImageError, match="the uploaded image could not be decoded: truncated"):
        predict(predictor, bad)
    assert set(predictor.service.root.iterdir()) == before


def test_disk_use_stays_bounded_over_many_predictions(predictor, photos, monkeypatch):
    import sam2enc.service as service

    monkeypatch.setattr(service, "KEEP_PREDICTIONS", 3)
    outputs = [predict(predictor, photos["chelsea_exif6"])[0] for _ in range(6)]
    remaining = list(predictor.service.root.iterdir())
    assert len(remaining) == 3
    assert all(out.exists() for out in outputs[-3:])  # the newest ones, possibly still uploading
    size = sum(f.stat().st_size for f in predictor.service.root.rglob("*") if f.is_file())
    assert size < 3 * 8.5e6


def test_setup_without_exported_weights_says_how_to_get_them(tmp_path, monkeypatch):
    from predict import Predictor

    monkeypatch.setenv("SAM2ENC_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="make weights"):
        Predictor().setup()


def test_the_released_env_name_still_works_with_a_warning(tmp_path, monkeypatch, caplog):
    """0.1.0 documented $SAM2ENC_MODELS: a deployment that sets it keeps working, and is told the new name."""
    from sam2enc.modeldir import models_dir_from_env

    monkeypatch.delenv("SAM2ENC_MODELS_DIR", raising=False)
    monkeypatch.setenv("SAM2ENC_MODELS", str(tmp_path))
    with caplog.at_level("WARNING", logger="sam2enc"):
        assert models_dir_from_env() == tmp_path
    assert "SAM2ENC_MODELS_DIR" in caplog.text
