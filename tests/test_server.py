"""Through Cog's own HTTP server (coglet) on 127.0.0.1, as `cog predict` and Replicate drive it.

Two servers: one with --upload-url pointed at a local upload endpoint (how Replicate runs models:
output files are PUT there and the prediction returns their URLs), one without (outputs come back
inline as data: URIs, as with a local `cog predict`).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from sam2enc.bundle import EMBEDDING_FILE, MANIFEST_FILE, parse_bundle
from sam2enc.pipeline import encode
from tests.cogserver import start_server
from tools.cog_schema import SCHEMA_PATH, build_schema, render

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[1]


class FileHost:
    """A loopback HTTP host: serves photos by GET and stores what the model server PUTs."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.uploads: dict[str, bytes] = {}
        self.counter = itertools.count()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = host.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def do_PUT(self):
                # Replicate's file service answers with where it stored the file (Location); two
                # predictions upload the same names at once, so each upload gets a place of its own.
                path = f"{self.path.rsplit('/', 1)[0]}/{next(host.counter)}/{self.path.rsplit('/', 1)[1]}"
                host.uploads[path] = self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(201)
                self.send_header("Location", f"{host.url}{path}")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def host():
    h = FileHost()
    yield h
    h.server.shutdown()


# The image runs with cog.yaml's concurrency.max as COG_MAX_CONCURRENCY (the stub server ignores cog.yaml).
COG_YAML = yaml.safe_load((ROOT / "cog.yaml").read_text())
CONCURRENCY = {"COG_MAX_CONCURRENCY": str(COG_YAML["concurrency"]["max"])}


@pytest.fixture(scope="module")
def upload_server(models_dir, host):
    proc, url = start_server(models_dir, "--upload-url", f"{host.url}/uploads/", env=CONCURRENCY)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def inline_server(models_dir):
    proc, url = start_server(models_dir)
    yield url
    proc.terminate()
    proc.wait(10)


def post(url: str, body: dict) -> tuple[int, dict]:
    """One prediction. Cog answers 409 "At capacity" while its one slot is still releasing the previous
    prediction (seen under load right after a failed one); like Replicate's queue, wait and send again."""
    deadline = time.monotonic() + 30
    while True:
        request = urllib.request.Request(
            f"{url}/predictions", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code != 409 or time.monotonic() > deadline:
                return exc.code, json.load(exc)
        time.sleep(0.2)


def data_uri(path: Path, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def by_name(urls: list[str], fetch) -> dict[str, bytes]:
    """Outputs are identified by file name: coglet lists uploads in the order they finish."""
    return {url.rsplit("/", 1)[-1]: fetch(url) for url in urls}


def test_committed_schema_matches_the_predictor():
    assert SCHEMA_PATH.read_text() == render(build_schema()), "run `make schema` and commit the result"


def test_server_publishes_the_schema(upload_server):
    with urllib.request.urlopen(f"{upload_server}/openapi.json") as response:
        served = json.load(response)
    assert served["components"]["schemas"]["Input"]["required"] == ["image"]
    assert served["components"]["schemas"]["Output"]["items"] == {"type": "string", "format": "uri"}


def test_data_uri_in_uploaded_files_out(upload_server, host, photos, encoder):
    status, body = post(upload_server, {"input": {"image": data_uri(photos["rocket"])}})
    assert status == 200 and body["status"] == "succeeded", body
    assert sorted(u.rsplit("/", 1)[-1] for u in body["output"]) == [EMBEDDING_FILE, MANIFEST_FILE]
    files = by_name(body["output"], lambda u: host.uploads[u.removeprefix(host.url)])
    bundle = parse_bundle(json.loads(files[MANIFEST_FILE]), files[EMBEDDING_FILE])
    assert files[EMBEDDING_FILE] == encode(photos["rocket"], encoder).to_bytes()
    assert (bundle.original_width, bundle.original_height) == (640, 427)
    assert "encoded on CPUExecutionProvider" in body["logs"]


def test_two_predictions_at_once_each_get_their_own_bundle(upload_server, host, photos, encoder):
    """Replicate sends up to concurrency.max predictions to one worker: none is refused (409) and
    none gets the other's bundle."""
    names = ["rocket", "coffee"]
    start = threading.Barrier(len(names))

    def predict(name: str) -> dict:
        start.wait()
        request = urllib.request.Request(
            f"{upload_server}/predictions",
            json.dumps({"input": {"image": data_uri(photos[name])}}).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:  # a 409 raises here
            return json.load(response)

    with ThreadPoolExecutor(len(names)) as pool:
        bodies = dict(zip(names, pool.map(predict, names)))
    for name, body in bodies.items():
        assert body["status"] == "succeeded", body
        files = by_name(body["output"], lambda u: host.uploads[u.removeprefix(host.url)])
        assert files[EMBEDDING_FILE] == encode(photos[name], encoder).to_bytes(), name


def test_url_in(upload_server, host, photos, encoder):
    host.files["/photos/chelsea.jpg"] = photos["chelsea_exif6"].read_bytes()
    status, body = post(upload_server, {"input": {"image": f"{host.url}/photos/chelsea.jpg"}})
    assert status == 200 and body["status"] == "succeeded", body
    files = by_name(body["output"], lambda u: host.uploads[u.removeprefix(host.url)])
    assert files[EMBEDDING_FILE] == encode(photos["chelsea_exif6"], encoder).to_bytes()
    assert json.loads(files[MANIFEST_FILE])["originalWidth"] == 451


def test_without_upload_url_files_come_back_inline(inline_server, photos):
    status, body = post(inline_server, {"input": {"image": data_uri(photos["coffee"], "image/png")}})
    assert status == 200 and body["status"] == "succeeded", body

    def decode(uri: str) -> bytes:
        return base64.b64decode(uri.split(",", 1)[1])

    files = {}
    for uri in body["output"]:
        payload = decode(uri)
        files[MANIFEST_FILE if payload.startswith(b"{") else EMBEDDING_FILE] = payload
    bundle = parse_bundle(json.loads(files[MANIFEST_FILE]), files[EMBEDDING_FILE])
    assert bundle.original_width == 600


def test_bad_upload_fails_with_a_readable_error(upload_server):
    text = "data:text/plain;base64," + base64.b64encode(b"not a photo").decode()
    status, body = post(upload_server, {"input": {"image": text}})
    assert status == 200 and body["status"] == "failed"
    assert "the uploaded image is not a supported image: it is a text file" in body["error"]
    assert "Traceback" not in body["error"]


def test_missing_input_is_rejected_by_the_schema(upload_server):
    status, body = post(upload_server, {"input": {}})
    assert status == 422
    assert body["detail"][0]["loc"][-1] == "image"


SERVER_CASES = [
    "png rgba over white",
    "exif orientation 6",
    "jpeg cmyk",
    "truncated png",
    "svg",
    "decompression bomb",
]


@pytest.mark.parametrize("name", SERVER_CASES)
def test_bad_and_unusual_uploads_through_the_server(name, upload_server, host, encoder):
    from tests.test_image_inputs import ACCEPTED, REJECTED

    case = next(c for c in ACCEPTED + REJECTED if c.name == name)
    payload = case.make()
    uri = "data:application/octet-stream;base64," + base64.b64encode(payload).decode()
    status, body = post(upload_server, {"input": {"image": uri}})
    assert status == 200
    if isinstance(case.expect, str):
        assert body["status"] == "failed"
        assert f"the uploaded image {case.expect}" in body["error"] or case.expect in body["error"]
        assert "Traceback" not in body["error"]
    else:
        assert body["status"] == "succeeded", body
        files = by_name(body["output"], lambda u: host.uploads[u.removeprefix(host.url)])
        assert files[EMBEDDING_FILE] == encode(payload, encoder).to_bytes()


@pytest.mark.parametrize(
    "runner, uploaded",
    [("AsList", True), ("AsModel", False)],
    ids=["list[Path] is uploaded", "BaseModel of Paths stays inline"],
)
def test_which_output_type_cog_uploads(runner, uploaded, models_dir, host):
    """Why predict.py returns list[Path]: with --upload-url only a list's files are PUT to the uploader."""
    before = len(host.uploads)
    candidates = ROOT / "tests" / "cog_output_types"
    proc, url = start_server(
        models_dir, "--upload-url", f"{host.url}/candidates/", stub=f"candidates.py:{runner}", cwd=candidates
    )
    try:
        status, body = post(url, {"input": {"text": "x"}})
    finally:
        proc.terminate()
        proc.wait(10)
    assert status == 200 and body["status"] == "succeeded", body
    outputs = body["output"] if isinstance(body["output"], list) else list(body["output"].values())
    assert len(outputs) == 2
    if uploaded:
        assert all(o.startswith(host.url) for o in outputs) and len(host.uploads) == before + 2
    else:
        assert all(o.startswith("data:") for o in outputs) and len(host.uploads) == before
