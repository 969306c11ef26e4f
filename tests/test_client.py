"""The Python client helper against a local stand-in for Replicate's API running the real predictor."""

from __future__ import annotations

import pytest

from sam2enc.client import RemoteError, encode_cog, encode_remote
from sam2enc.pipeline import encode
from tests.replicate_standin import ReplicateStandIn

TOKEN = "r8_test_token_0123456789"


@pytest.fixture(scope="module")
def replicate_api(models_dir):
    standin = ReplicateStandIn(models_dir, TOKEN)
    yield standin
    standin.close()


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch):
    monkeypatch.setenv("REPLICATE_POLL_INTERVAL", "0.05")


def test_encode_remote_returns_the_verified_bundle(replicate_api, photos, encoder):
    bundle = encode_remote(photos["rocket"], "me/sam2enc:abc123", api_token=TOKEN, base_url=replicate_api.url)
    assert bundle.to_bytes() == encode(photos["rocket"], encoder).to_bytes()
    assert (bundle.original_width, bundle.original_height) == (640, 427)
    assert f"Bearer {TOKEN}" in replicate_api.seen_authorization


def test_a_failed_prediction_says_why(replicate_api, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    with pytest.raises(
        RemoteError, match="failed: the uploaded image is not a supported image: it is a text"
    ):
        encode_remote(bad, "abc123", api_token=TOKEN, base_url=replicate_api.url)


def test_a_wrong_token_is_refused(replicate_api, photos):
    with pytest.raises(RemoteError, match="Replicate refused the prediction"):
        encode_remote(photos["rocket"], "abc123", api_token="wrong", base_url=replicate_api.url)


def test_encode_cog_against_cogs_own_server(models_dir, photos, encoder):
    from tests.test_server import start_server

    proc, url = start_server(models_dir)
    try:
        bundle = encode_cog(photos["coffee"], url)
    finally:
        proc.terminate()
        proc.wait(10)
    assert bundle.to_bytes() == encode(photos["coffee"], encoder).to_bytes()
