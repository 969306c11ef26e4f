"""The bundle format is a public contract: layout, checksum, versioning, whole-or-nothing writes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sam2enc.bundle import (
    BYTE_LENGTH,
    EMBEDDING_FILE,
    LAYOUT,
    MANIFEST_FILE,
    Bundle,
    read_bundle,
    write_bundle,
)
from sam2enc.errors import BundleError


def make_bundle(seed: int = 0) -> Bundle:
    rng = np.random.default_rng(seed)
    features = {
        "image_embed": rng.standard_normal((1, 256, 64, 64)).astype(np.float16),
        "high_res_feats_0": rng.standard_normal((1, 32, 256, 256)).astype(np.float16),
        "high_res_feats_1": rng.standard_normal((1, 64, 128, 128)).astype(np.float16),
    }
    return Bundle(
        features, 640, 427, {"name": "sam2.1_hiera_tiny", "checkpointSha256": None}, "CPUExecutionProvider"
    )


def test_layout_is_the_documented_one():
    assert BYTE_LENGTH == 8_388_608
    assert [(name, spec["offset"], spec["shape"]) for name, spec in LAYOUT.items()] == [
        ("image_embed", 0, [1, 256, 64, 64]),
        ("high_res_feats_0", 2_097_152, [1, 32, 256, 256]),
        ("high_res_feats_1", 6_291_456, [1, 64, 128, 128]),
    ]


def test_round_trip_is_exact_and_little_endian(tmp_path):
    bundle = make_bundle()
    out = write_bundle(bundle, tmp_path / "b")
    payload = (out / EMBEDDING_FILE).read_bytes()
    assert len(payload) == BYTE_LENGTH
    # the second tensor starts at its documented offset, as little-endian float16
    first = np.frombuffer(payload[2_097_152:2_097_154], "<f2")[0]
    assert first == bundle.features["high_res_feats_0"].flat[0]
    back = read_bundle(out)
    for name, array in bundle.features.items():
        assert np.array_equal(back.features[name], array)
    assert (back.original_width, back.original_height) == (640, 427)


def test_manifest_keeps_browser_keys_and_adds_integrity(tmp_path):
    out = write_bundle(make_bundle(), tmp_path / "b")
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["tensors"]["image_embed"] == {"offset": 0, "shape": [1, 256, 64, 64], "dtype": "float16"}
    assert manifest["originalWidth"] == 640 and manifest["originalHeight"] == 427
    assert manifest["format"] == "sam2enc-bundle" and manifest["version"] == 1
    assert manifest["inputSize"] == 1024 and manifest["byteLength"] == BYTE_LENGTH
    assert len(manifest["sha256"]) == 64
    assert manifest["model"]["name"] == "sam2.1_hiera_tiny"
    assert manifest["provider"] == "CPUExecutionProvider"


def test_reader_accepts_either_file_path(tmp_path):
    out = write_bundle(make_bundle(), tmp_path / "b")
    assert read_bundle(out / MANIFEST_FILE).original_width == 640
    assert read_bundle(out / EMBEDDING_FILE).original_height == 427


def _corrupt(directory, how):
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    payload = bytearray((directory / EMBEDDING_FILE).read_bytes())
    if how == "truncated":
        payload = payload[:-2]
    elif how == "flipped byte":
        payload[12345] ^= 0x40
    elif how == "version 2":
        manifest["version"] = 2
    elif how == "wrong shape":
        manifest["tensors"]["image_embed"]["shape"] = [1, 256, 32, 128]
    elif how == "not a bundle":
        manifest = {"hello": "world"}
    elif how == "missing size":
        del manifest["originalWidth"]
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
    (directory / EMBEDDING_FILE).write_bytes(bytes(payload))


@pytest.mark.parametrize(
    "how, message",
    [
        ("truncated", "8,388,606 bytes, expected 8,388,608"),
        ("flipped byte", "does not match the manifest's sha256"),
        ("version 2", "bundle version 2 is not supported"),
        ("wrong shape", "do not match the version 1 layout"),
        ("not a bundle", "does not describe a sam2enc-bundle"),
        ("missing size", "originalWidth/originalHeight"),
    ],
)
def test_reader_rejects_damaged_bundles(tmp_path, how, message):
    out = write_bundle(make_bundle(), tmp_path / "b")
    _corrupt(out, how)
    with pytest.raises(BundleError, match=message):
        read_bundle(out)


def test_reader_names_a_missing_file(tmp_path):
    out = write_bundle(make_bundle(), tmp_path / "b")
    (out / EMBEDDING_FILE).unlink()
    with pytest.raises(BundleError, match=r"embedding\.bin is missing"):
        read_bundle(out)


def test_reader_rejects_invalid_json(tmp_path):
    out = write_bundle(make_bundle(), tmp_path / "b")
    (out / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(out)


def test_writer_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    with pytest.raises(BundleError, match="not an empty directory"):
        write_bundle(make_bundle(), tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert (tmp_path / "b" / "keep.txt").read_text() == "mine"


def test_writer_fills_an_existing_empty_directory(tmp_path):
    (tmp_path / "b").mkdir()
    write_bundle(make_bundle(), tmp_path / "b")
    assert read_bundle(tmp_path / "b").original_width == 640


def test_writer_leaves_nothing_when_interrupted(tmp_path, monkeypatch):
    """A failure between the two files leaves no bundle and no staging directory behind."""
    import pathlib

    def fail(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pathlib.Path, "write_text", fail)
    with pytest.raises(OSError, match="disk full"):
        write_bundle(make_bundle(), tmp_path / "b")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_wrong_shapes(tmp_path):
    bundle = make_bundle()
    bundle.features["image_embed"] = np.zeros((1, 256, 32, 32), np.float16)
    with pytest.raises(BundleError, match="image_embed has shape"):
        write_bundle(bundle, tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_same_features_give_identical_bytes(tmp_path):
    a = write_bundle(make_bundle(), tmp_path / "a")
    b = write_bundle(make_bundle(), tmp_path / "b")
    assert (a / EMBEDDING_FILE).read_bytes() == (b / EMBEDDING_FILE).read_bytes()
    shutil.rmtree(a)
