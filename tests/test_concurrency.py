"""Several predictions at once share one ONNX Runtime session and still get their own, correct bundles."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sam2enc.bundle import read_bundle
from sam2enc.pipeline import encode
from sam2enc.service import EncoderService

PHOTOS = ["astronaut", "coffee", "rocket", "chelsea_exif6"]


@pytest.fixture(scope="module")
def service(models_dir):
    return EncoderService(models_dir, device="cpu")


def test_four_predictions_at_once_do_not_cross_talk(service, photos, encoder):
    expected = {name: encode(photos[name], encoder).to_bytes() for name in PHOTOS}
    start = threading.Barrier(len(PHOTOS))

    def predict(name: str):
        start.wait()  # all four enter the session together
        return name, service.encode(photos[name])

    with ThreadPoolExecutor(len(PHOTOS)) as pool:
        results = list(pool.map(predict, PHOTOS))

    directories = {files.embedding.parent for _, files in results}
    assert len(directories) == len(PHOTOS)
    for name, files in results:
        assert files.embedding.read_bytes() == expected[name], name
        read_bundle(files.embedding.parent)  # size, checksum, version all verified


def test_same_image_gives_byte_identical_embedding(service, photos):
    first = service.encode(photos["coffee"]).embedding.read_bytes()
    second = service.encode(photos["coffee"]).embedding.read_bytes()
    assert first == second
