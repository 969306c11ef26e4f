"""Several predictions at once share one ONNX Runtime session and still get their own, correct bundles;
they form a pipeline: decoding runs beside another photo's encoder, the encoder takes one photo at a time."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

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
    encoder_runs = sorted(files.timings.spans["encoder"] for _, files in results)
    for (_, end), (start, _) in itertools.pairwise(encoder_runs):
        assert end <= start, "two encoder runs shared the device"


def test_one_photo_decodes_while_another_holds_the_encoder(service, photos, monkeypatch):
    """The second photo's decode must finish while the first is inside the encoder: decoding sits
    outside the device lock. (Inside it, the first photo would wait for a decode that cannot start.)"""
    first_in_encoder, second_decoded = threading.Event(), threading.Event()
    overlapped = []
    real_run, real_load = service.encoder.run, service.encoder.load

    def run(pixels):
        if not first_in_encoder.is_set():
            first_in_encoder.set()
            overlapped.append(second_decoded.wait(timeout=20))
        return real_run(pixels)

    def load_image(source, name=None):
        image = real_load(source, name)
        if first_in_encoder.is_set():
            second_decoded.set()
        return image

    monkeypatch.setattr(service.encoder, "run", run)
    monkeypatch.setattr(service.encoder, "load", load_image)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(service.encode, photos["coffee"])
        assert first_in_encoder.wait(timeout=60)
        second = pool.submit(service.encode, photos["rocket"])
        first.result(), second.result()
    assert overlapped == [True]


def test_cog_yaml_and_predict_py_allow_the_same_concurrency():
    """cog.yaml's concurrency.max and the @concurrent(max=...) on run() are read by different Cog
    versions: they must agree."""
    import predict

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "cog.yaml").read_text())
    assert config["concurrency"]["max"] == predict.MAX_CONCURRENCY > 1
    assert predict.Predictor.run.__cog_concurrent_max__ == predict.MAX_CONCURRENCY


def test_same_image_gives_byte_identical_embedding(service, photos):
    first = service.encode(photos["coffee"]).embedding.read_bytes()
    second = service.encode(photos["coffee"]).embedding.read_bytes()
    assert first == second
