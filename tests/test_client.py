"""The Python client helper against a local stand-in for Replicate's API running the real predictor."""

from __future__ import annotations

import base64
import json
import socket

import pytest

from sam2enc.bundle import BundleError
from sam2enc.client import RemoteError, bundle_from_outputs, encode_cog, encode_remote
from sam2enc.errors import ImageError
from sam2enc.pipeline import encode
from tests.replicate_standin import ReplicateStandIn

TOKEN = "r8_test_token_0123456789"


@pytest.fixture(scope="module")
def standin(models_dir):
    api = ReplicateStandIn(models_dir, TOKEN)
    yield api
    api.close()


@pytest.fixture
def replicate_api(standin, monkeypatch):
    """The shared stand-in, its test knobs reset after each test; the client polls every 50 ms."""
    monkeypatch.setenv("REPLICATE_POLL_INTERVAL", "0.05")
    yield standin
    standin.delay, standin.fake_output = 0.0, None


@pytest.fixture(scope="module")
def rocket_bundle(photos, encoder):
    return encode(photos["rocket"], encoder)


def test_encode_remote_uploads_the_photo_and_returns_the_verified_bundle(
    replicate_api, photos, rocket_bundle
):
    before = len(replicate_api.requests)
    bundle = encode_remote(photos["rocket"], "me/sam2enc:abc123", api_token=TOKEN, base_url=replicate_api.url)
    assert bundle.to_bytes() == rocket_bundle.to_bytes()
    assert (bundle.original_width, bundle.original_height) == (640, 427)
    calls = replicate_api.requests[before:]
    assert calls[:2] == [("POST", "/v1/files"), ("POST", "/v1/predictions")], calls
    prediction = replicate_api.predictions[calls[-1][1].rsplit("/", 1)[-1]]
    assert prediction["version"] == "abc123"
    assert prediction["input"]["image"].startswith(f"{replicate_api.url}/v1/files/")
    assert set(replicate_api.seen_authorization[before:]) == {f"Bearer {TOKEN}"}


def test_a_failed_prediction_says_why(replicate_api, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    before = len(replicate_api.requests)
    with pytest.raises(
        RemoteError, match="failed: the uploaded image is not a supported image: it is a text"
    ):
        encode_remote(bad, "me/sam2enc", api_token=TOKEN, base_url=replicate_api.url)
    assert ("POST", "/v1/models/me/sam2enc/predictions") in replicate_api.requests[before:], "owner/name"


def test_a_wrong_token_is_refused(replicate_api, photos):
    with pytest.raises(RemoteError, match=r"Replicate refused the API token \(401: You did not pass"):
        encode_remote(photos["rocket"], "abc123", api_token="wrong", base_url=replicate_api.url)


def test_an_unreachable_api_is_a_remote_error(photos):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(RemoteError, match=f"could not reach {closed}"):
        encode_remote(photos["rocket"], "abc123", api_token=TOKEN, base_url=closed)


def test_a_missing_photo_is_an_image_error(replicate_api, tmp_path):
    with pytest.raises(ImageError, match=r"missing\.jpg cannot be read"):
        encode_remote(tmp_path / "missing.jpg", "abc123", api_token=TOKEN, base_url=replicate_api.url)


@pytest.mark.parametrize(
    "names, message",
    [
        (["out.png"], r"expected two output files"),
        (["out-0.webp", "out-1.webp"], r"the model returned \['out-0.webp', 'out-1.webp'\]"),
    ],
    ids=["one file", "two files of another model"],
)
def test_a_wrong_output_is_refused(replicate_api, photos, names, message):
    for name in names:
        replicate_api.files[f"other/{name}"] = b"\x89PNG"
    urls = [f"{replicate_api.url}/delivery/other/{name}" for name in names]
    replicate_api.fake_output = urls if len(urls) > 1 else urls[0]
    with pytest.raises(RemoteError, match=message):
        encode_remote(photos["rocket"], "abc123", api_token=TOKEN, base_url=replicate_api.url)


def test_a_prediction_that_never_finishes_is_canceled(replicate_api, photos):
    replicate_api.delay = 3.0
    with pytest.raises(RemoteError, match=r"did not finish within 0\.5 s"):
        encode_remote(photos["rocket"], "abc123", api_token=TOKEN, base_url=replicate_api.url, timeout=0.5)
    assert replicate_api.requests[-1][1].endswith("/cancel")


def data_uri(payload: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(payload).decode()


def test_inline_outputs_are_told_apart_by_content_in_either_order(rocket_bundle):
    payload = rocket_bundle.to_bytes()
    manifest = json.dumps(rocket_bundle.manifest(payload)).encode()
    for outputs in ([data_uri(payload), data_uri(manifest)], [data_uri(manifest), data_uri(payload)]):
        assert bundle_from_outputs(outputs).to_bytes() == payload
    corrupted = bytes([payload[0] ^ 1]) + payload[1:]
    with pytest.raises(BundleError, match="sha256"):
        bundle_from_outputs([data_uri(manifest), data_uri(corrupted)])


def test_encode_cog_against_cogs_own_server(models_dir, photos, encoder):
    from tests.test_server import start_server

    proc, url = start_server(models_dir)
    try:
        bundle = encode_cog(photos["coffee"], url)
    finally:
        proc.terminate()
        proc.wait(10)
    assert bundle.to_bytes() == encode(photos["coffee"], encoder).to_bytes()
