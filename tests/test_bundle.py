"""The bundle format is a public contract: layout, checksum, versioning, whole-or-nothing writes."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat

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


def disk_full_at_the_second_file(monkeypatch) -> None:
    """The disk fills up after one of the bundle's two files was written (whichever comes first)."""
    import pathlib

    real, written = pathlib.Path.write_bytes, []

    def write_bytes(self, data):
        if written:
            raise OSError("disk full")
        written.append(self.name)
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)


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


def test_writer_refuses_a_folder_holding_anything_but_a_bundle(tmp_path):
    """The user's folder (even one that also holds a bundle's files) is never written into or replaced."""
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    (tmp_path / "b" / MANIFEST_FILE).write_text("{}")
    with pytest.raises(BundleError, match=r"b holds files that are not a bundle's \(keep.txt\): it was left"):
        write_bundle(make_bundle(), tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"], "no staging left behind"
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["keep.txt", MANIFEST_FILE]
    assert (tmp_path / "b" / "keep.txt").read_text() == "mine"
    (tmp_path / "c").write_text("a file")
    with pytest.raises(BundleError, match="is not a bundle directory"):
        write_bundle(make_bundle(), tmp_path / "c")
    assert (tmp_path / "c").read_text() == "a file"


def test_writer_replaces_an_earlier_bundle_only_once_the_new_one_is_complete(tmp_path, monkeypatch):
    old = write_bundle(make_bundle(seed=1), tmp_path / "b")
    old_bytes = (old / EMBEDDING_FILE).read_bytes()
    disk_full_at_the_second_file(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        write_bundle(make_bundle(seed=2), tmp_path / "b")
    monkeypatch.undo()
    assert (tmp_path / "b" / EMBEDDING_FILE).read_bytes() == old_bytes, "a failed write keeps the old bundle"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    (tmp_path / "b" / EMBEDDING_FILE).unlink()  # a half bundle (one file) is ours to replace too
    write_bundle(make_bundle(seed=2), tmp_path / "b")
    assert read_bundle(tmp_path / "b").to_bytes() == make_bundle(seed=2).to_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"], "the old bundle is gone, not hidden beside"


def test_written_bundles_are_readable_by_others_under_an_ordinary_umask(tmp_path):
    """mkdtemp makes 0700 and the rename keeps it: a web server running as another user got 403."""
    previous = os.umask(0o022)
    try:
        out = write_bundle(make_bundle(), tmp_path / "b")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert {stat.S_IMODE((out / f).stat().st_mode) for f in (EMBEDDING_FILE, MANIFEST_FILE)} == {0o644}
    previous = os.umask(0o077)  # and a private umask stays private
    try:
        out = write_bundle(make_bundle(), tmp_path / "private")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_the_manifest_records_the_photo_and_readers_accept_bundles_without_it(tmp_path):
    digest = "ab" * 32
    bundle = dataclasses.replace(make_bundle(), source_sha256=digest)
    out = write_bundle(bundle, tmp_path / "b")
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["source"] == {"sha256": digest} and manifest["version"] == 1
    assert read_bundle(out).source_sha256 == digest
    del manifest["source"]  # a bundle written before the field
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert read_bundle(out).source_sha256 is None
    manifest["source"] = {"sha256": "not hex"}
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"source\.sha256 must be 64 lowercase hex digits"):
        read_bundle(out)


def test_writer_fills_an_existing_empty_directory(tmp_path):
    (tmp_path / "b").mkdir()
    write_bundle(make_bundle(), tmp_path / "b")
    assert read_bundle(tmp_path / "b").original_width == 640


def test_writer_leaves_nothing_when_interrupted(tmp_path, monkeypatch):
    """A failure between the two files leaves no bundle and no staging directory behind."""
    disk_full_at_the_second_file(monkeypatch)
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
