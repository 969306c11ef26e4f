"""The hosted proxy (sam2enc/web/edge/proxy.js), run by its Node adapter, in front of the schema-faithful
Replicate stand-in: a photo goes through upload, model lookup, create, get, cancel and the output
downloads exactly as the page sends them, every request and answer is checked against Replicate's
published schema, and the token shows up in no answer and in nothing the process prints.

Cost: a Node process and the stand-in's real (random-weight tiny) encoder: ~5 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from sam2enc.bundle import parse_bundle
from sam2enc.pipeline import encode
from tests.helpers import multipart
from tests.replicate_standin import VERSION, checked_api_fixture, standin_fixture

pytestmark = [pytest.mark.server, pytest.mark.node]

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "r8_edge_secret_token_never_printed_9"
APP = "https://app.example"


standin = standin_fixture(TOKEN)


@pytest.fixture(scope="module")
def edge(standin):
    """`node sam2enc/web/edge/node.js --port 0` with the stand-in as its upstream; yields (url, process)."""
    node = shutil.which("node")
    assert node, "node >= 20 runs the hosted proxy"
    env = {
        **os.environ,
        "REPLICATE_API_BASE": f"{standin.url}/v1",
        "ALLOWED_ORIGINS": APP,
        "CANCEL_AFTER": "30",
    }
    process = subprocess.Popen(
        [node, "sam2enc/web/edge/node.js", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    assert line.startswith("sam2enc proxy on "), line + process.stderr.read()
    yield line.split()[3].rstrip("/"), process
    process.terminate()
    out, err = process.communicate(timeout=10)
    assert TOKEN not in out + err, "the token was printed"
    assert re.search(r"^(GET|POST|PUT) /api/\S* \d{3}$", out, re.M), f"one line per request: {out}"


api = checked_api_fixture()


def call(url: str, method: str = "GET", body: bytes | None = None, token: str | None = TOKEN, **headers: str):
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url, body, {k.replace("_", "-"): v for k, v in headers.items()}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, kind, payload = response.status, response.headers.get("Content-Type"), response.read()
            allow = response.headers.get("Access-Control-Allow-Origin")
    except urllib.error.HTTPError as exc:
        status, kind, payload = exc.code, exc.headers.get("Content-Type"), exc.read()
        allow = exc.headers.get("Access-Control-Allow-Origin")
    assert TOKEN.encode() not in payload, "the token is in an answer"
    return status, kind, payload, allow


def test_a_photo_goes_through_the_hosted_proxy_as_the_page_sends_it(edge, api, photos, encoder):
    url, _ = edge
    api.outputs_need_token = True  # outputs answer 401 without the token: the retry path
    body, kind = multipart(photos["rocket"])
    status, _, payload, allow = call(f"{url}/api/files", "POST", body, Content_Type=kind, Origin=APP)
    assert (status, allow) == (201, APP)
    image = json.loads(payload)["urls"]["get"]
    status, _, payload, _ = call(f"{url}/api/models/me/sam2enc", Origin=APP)
    assert status == 200 and json.loads(payload)["latest_version"]["id"] == VERSION
    create = json.dumps({"version": VERSION, "input": {"image": image}}).encode()
    status, _, payload, _ = call(
        f"{url}/api/predictions", "POST", create, Content_Type="application/json", Prefer="wait=5", Origin=APP
    )
    assert status in (201, 202)  # 202: still running when the sync window closed (a loaded machine)
    sent = api.headers[("POST", "/v1/predictions")]
    assert (sent["Cancel-After"], sent["Prefer"], sent["Authorization"]) == (
        "30s",
        "wait=5",
        f"Bearer {TOKEN}",
    )
    prediction = json.loads(payload)
    deadline = time.monotonic() + 60
    while prediction["status"] not in ("succeeded", "failed", "canceled", "aborted"):
        assert time.monotonic() < deadline, "the prediction never finished"
        time.sleep(0.1)
        status, _, payload, _ = call(f"{url}/api/predictions/{prediction['id']}")
        assert status == 200
        prediction = json.loads(payload)
    assert prediction["status"] == "succeeded", prediction.get("error")
    files = {}
    for output in prediction["output"]:
        status, _, payload, _ = call(f"{url}/api/files?url={urllib.parse.quote(output, safe='')}", Origin=APP)
        assert status == 200
        files[output.rsplit("/", 1)[-1]] = payload
    downloads = [auth for _, auth in api.downloads]
    assert downloads == [None, f"Bearer {TOKEN}"] * 2, (
        "each output first without the token, then once with it"
    )
    bundle = parse_bundle(json.loads(files["manifest.json"]), files["embedding.bin"])
    assert bundle.to_bytes() == encode(photos["rocket"], encoder).to_bytes()
    assert {auth for auth in api.seen_authorization} == {f"Bearer {TOKEN}"}


def test_cancel_reaches_replicate_and_a_wrong_token_gets_replicates_401(edge, api):
    url, _ = edge
    api.delay = 30  # queued: still cancellable
    create = json.dumps({"version": VERSION, "input": {"image": "data:image/jpeg;base64,/9j/"}}).encode()
    status, _, payload, _ = call(f"{url}/api/predictions", "POST", create, Content_Type="application/json")
    assert status == 201
    pid = json.loads(payload)["id"]
    status, _, payload, _ = call(f"{url}/api/predictions/{pid}/cancel", "POST", b"")
    assert status == 200 and json.loads(payload)["status"] == "canceled"
    assert ("POST", f"/v1/predictions/{pid}/cancel") in api.requests
    status, kind, payload, _ = call(f"{url}/api/predictions/{pid}", token="r8_wrong")
    assert (status, kind) == (401, "application/problem+json")
    assert "source" not in json.loads(payload), "Replicate's own answer, passed through"


@pytest.mark.parametrize(
    "path, method, origin, status",
    [
        ("/api/predictions", "POST", "https://evil.example", 403),
        ("/api/predictions/abc", "GET", "https://evil.example", 403),
        ("/api/account", "GET", None, 404),
        ("/api/predictions", "PUT", None, 405),
        ("/api/files?url=http%3A%2F%2F169.254.169.254%2Flatest", "GET", None, 403),
    ],
)
def test_refusals_reach_nothing(edge, api, path, method, origin, status):
    url, _ = edge
    before = (len(api.requests), len(api.downloads))
    headers = {"Origin": origin} if origin else {}
    got, kind, payload, _ = call(f"{url}{path}", method, b"{}" if method != "GET" else None, **headers)
    assert (got, kind, json.loads(payload)["source"]) == (status, "application/problem+json", "proxy")
    assert (len(api.requests), len(api.downloads)) == before
