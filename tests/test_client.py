"""The Python client against a local Replicate stand-in that follows the published schema and runs the
real predictor; every request the client sends and every answer it gets is checked against the schema."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import sam2enc.client as client_module
from sam2enc.bundle import BundleError
from sam2enc.client import (
    RemoteError,
    RemoteModel,
    bundle_from_outputs,
    encode_cog,
    encode_remote,
    token_allowed,
)
from sam2enc.errors import ImageError
from sam2enc.pipeline import encode
from tests.replicate_standin import (
    OFFICIAL_VERSION,
    VERSION,
    ReplicateStandIn,
    checked_api_fixture,
    standin_fixture,
)

pytestmark = pytest.mark.server

TOKEN = "r8_test_token_0123456789"


standin = standin_fixture(TOKEN)


replicate_api = checked_api_fixture("replicate_api")


@pytest.fixture(scope="module")
def rocket_bundle(photos, encoder):
    return encode(photos["rocket"], encoder)


def run(api: ReplicateStandIn, photo, model: str = f"me/sam2enc:{VERSION}", **kwargs):
    return encode_remote(photo, model, api_token=TOKEN, base_url=api.url, **kwargs)


def created(api: ReplicateStandIn, before: int) -> dict:
    """The prediction the client created since request number ``before`` (the stand-in's latest)."""
    assert any(m == "POST" and p.endswith("/predictions") for m, p in api.requests[before:])
    return list(api.predictions.values())[-1]


def test_by_version_uploads_the_photo_and_returns_the_verified_bundle(replicate_api, photos, rocket_bundle):
    before = len(replicate_api.requests)
    bundle = run(replicate_api, photos["rocket"], timeout=90)
    assert bundle.to_bytes() == rocket_bundle.to_bytes()
    assert (bundle.original_width, bundle.original_height) == (640, 427)
    calls = replicate_api.requests[before:]
    assert calls[:2] == [("POST", "/v1/files"), ("POST", "/v1/predictions")], calls
    prediction = created(replicate_api, before)
    assert prediction["version"] == VERSION
    assert prediction["input"]["image"].startswith(f"{replicate_api.url}/v1/files/")
    assert replicate_api.headers[("POST", "/v1/predictions")]["Cancel-After"] == "90s"
    assert set(replicate_api.seen_authorization[before:]) == {f"Bearer {TOKEN}"}
    assert {auth for _, auth in replicate_api.downloads[-2:]} == {None}, (
        "pre-signed: no token needed, none sent"
    )


@pytest.mark.parametrize("model", ["me/sam2enc", VERSION, " me/sam2enc:abc "])
def test_a_users_own_model_runs_by_name_by_version_or_by_id(replicate_api, photos, rocket_bundle, model):
    """Only official models run by name on Replicate: owner/name is resolved to its latest version."""
    before = len(replicate_api.requests)
    assert run(replicate_api, photos["rocket"], model).to_bytes() == rocket_bundle.to_bytes()
    calls = replicate_api.requests[before:]
    assert not any(p.endswith("/sam2enc/predictions") for _, p in calls), calls
    assert (("GET", "/v1/models/me/sam2enc") in calls) == (model == "me/sam2enc")
    assert created(replicate_api, before)["version"] == ("abc" if "abc" in model else VERSION)


def test_an_official_model_runs_by_name(replicate_api, photos, rocket_bundle):
    before = len(replicate_api.requests)
    assert run(replicate_api, photos["rocket"], "acme/official").to_bytes() == rocket_bundle.to_bytes()
    assert ("POST", "/v1/models/acme/official/predictions") in replicate_api.requests[before:]
    assert created(replicate_api, before)["version"] == "hidden"
    assert run(replicate_api, photos["rocket"], f"acme/official:{OFFICIAL_VERSION}").original_width == 640


@pytest.mark.parametrize(
    "model, message",
    [
        ("me/empty", r"^me/empty has no version to run yet: push one .* or pass me/empty:<version id>$"),
        (
            "other/private",
            r"has no model other/private that this token can see \(404\).*other/private:<version",
        ),
        ("nobody/nothing", r"has no model nobody/nothing that this token can see"),
        ("me/sam2enc:" + "0" * 64, r"\(422: The specified version does not exist"),
        ("me/sam2enc:abc:def", r"is not owner/name:version, a version id or owner/name"),
    ],
)
def test_a_model_that_cannot_run_is_one_sentence(replicate_api, photos, model, message):
    before = len(replicate_api.requests)
    with pytest.raises(RemoteError, match=message):
        run(replicate_api, photos["rocket"], model)
    assert ("POST", "/v1/predictions") not in replicate_api.requests[before:] or "0" * 64 in model


def test_a_failed_prediction_says_why(replicate_api, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    with pytest.raises(
        RemoteError, match="failed: the uploaded image is not a supported image: it is a text"
    ):
        run(replicate_api, bad)


@pytest.mark.parametrize(
    "status, message",
    [
        ("aborted", r"was aborted: its deadline \(20 s\) passed before the model started"),
        ("canceled", r"was canceled before it finished"),
        ("failed", r"failed: the model gave no reason"),
    ],
)
def test_every_final_status_ends_the_wait_with_a_sentence(replicate_api, photos, status, message):
    """replicate 1.0.7's pydantic Prediction rejects `aborted`: no such exception may reach the caller."""
    replicate_api.terminal = status
    started = time.monotonic()
    with pytest.raises(RemoteError, match=message):
        run(replicate_api, photos["rocket"], timeout=20)
    assert time.monotonic() - started < 10


def test_the_deadline_is_sent_and_replicate_aborts_a_prediction_that_never_started(replicate_api, photos):
    """Cancel-After = timeout; the stand-in honours it (time shrunk 50×): queued past it → aborted."""
    replicate_api.deadline_scale, replicate_api.delay = 0.02, 3.0
    with pytest.raises(RemoteError, match=r"was aborted: its deadline \(5 s\) passed"):
        run(replicate_api, photos["rocket"], timeout=5)


def test_a_prediction_that_never_finishes_is_canceled(replicate_api, photos):
    replicate_api.delay = 3.0
    with pytest.raises(RemoteError, match=r"did not finish within 0\.5 s and was canceled"):
        run(replicate_api, photos["rocket"], timeout=0.5)
    method, path = replicate_api.requests[-1]
    assert method == "POST" and path.endswith("/cancel")
    assert replicate_api.predictions[path.split("/")[3]]["status"] == "canceled"


# --- sync mode: Prefer: wait on create, then polling at urls.get -------------------------------------
def prediction_gets(api: ReplicateStandIn, before: int) -> int:
    return sum(m == "GET" and p.startswith("/v1/predictions/") for m, p in api.requests[before:])


def test_sync_mode_answers_a_short_prediction_without_polling(replicate_api, photos, rocket_bundle):
    """Prefer: wait=60 on create: a 1.5 s prediction comes back final in the create answer."""
    replicate_api.encode(photos["rocket"].read_bytes())  # the stand-in's encode is cached: time-based
    replicate_api.duration = 1.5
    before = len(replicate_api.requests)
    assert run(replicate_api, photos["rocket"]).to_bytes() == rocket_bundle.to_bytes()
    assert replicate_api.headers[("POST", "/v1/predictions")]["Prefer"] == "wait=60"
    assert prediction_gets(replicate_api, before) <= 1


def test_an_unfinished_sync_answer_is_polled_every_quarter_second(replicate_api, photos, rocket_bundle):
    """The sync window (1 s here) ends first: the 202 answer is unfinished, polling takes over at once."""
    replicate_api.encode(photos["rocket"].read_bytes())
    replicate_api.duration = 2.5
    before = len(replicate_api.requests)
    assert run(replicate_api, photos["rocket"], wait=1).to_bytes() == rocket_bundle.to_bytes()
    assert replicate_api.headers[("POST", "/v1/predictions")]["Prefer"] == "wait=1"
    gets = prediction_gets(replicate_api, before)
    assert 3 <= gets <= 12, f"{gets} GETs for 1.5 s of polling: every 250 ms from the start, then 500 ms"


def test_polling_starts_at_250_ms_and_backs_off_to_2_s():
    intervals = [client_module.poll_interval(t) for t in (0, 1, 1.6, 3, 6, 9, 60, 600)]
    assert intervals == [0.25, 0.25, 0.5, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_the_sync_window_never_outlasts_the_deadline(replicate_api, photos):
    """timeout 1.5 s: Prefer wait=1, then polling, then cancel at the deadline."""
    replicate_api.delay = 5.0
    with pytest.raises(RemoteError, match=r"did not finish within 1\.5 s and was canceled"):
        run(replicate_api, photos["rocket"], timeout=1.5)
    assert replicate_api.headers[("POST", "/v1/predictions")]["Prefer"] == "wait=1"
    prediction = list(replicate_api.predictions.values())[-1]
    assert prediction["status"] == "canceled", "given up at the deadline, not waited out (5 s queue)"
    method, path = replicate_api.requests[-1]
    assert method == "POST" and path.endswith("/cancel")


def test_a_stopped_encode_cancels_its_prediction(replicate_api, photos):
    replicate_api.delay = 5.0
    stop = threading.Event()
    ids: list[str] = []
    model = RemoteModel(VERSION, api_token=TOKEN, base_url=replicate_api.url, wait=1)
    with pytest.raises(RemoteError, match=r"was canceled: interrupted"):
        model.encode(photos["rocket"], stop=stop, on_created=lambda pid: (ids.append(pid), stop.set()))
    assert replicate_api.requests[-1] == ("POST", f"/v1/predictions/{ids[0]}/cancel")
    assert replicate_api.predictions[ids[0]]["status"] == "canceled"


def test_a_wrong_token_is_refused(replicate_api, photos):
    with pytest.raises(RemoteError, match=r"Replicate refused the API token \(401: You did not pass"):
        encode_remote(photos["rocket"], VERSION, api_token="wrong", base_url=replicate_api.url)


def test_429_is_retried_after_retry_after(replicate_api, photos, rocket_bundle):
    """Both official clients retry 429; replicate-javascript does so for POST too (lib/util.js)."""
    replicate_api.throttle, replicate_api.retry_after = 2, "1"
    before = len(replicate_api.requests)
    started = time.monotonic()
    assert run(replicate_api, photos["rocket"]).to_bytes() == rocket_bundle.to_bytes()
    assert time.monotonic() - started >= 2.0, "Retry-After: 1, twice"
    assert replicate_api.requests[before : before + 3] == [("POST", "/v1/files")] * 3


def test_429_past_the_deadline_is_one_sentence(replicate_api, photos):
    replicate_api.throttle, replicate_api.retry_after = 50, "3600"
    before = len(replicate_api.requests)
    with pytest.raises(RemoteError, match=r"rate-limiting this token \(429: Request was throttled.\); retry"):
        run(replicate_api, photos["rocket"], timeout=30)
    assert replicate_api.requests[before:] == [("POST", "/v1/files")], "an hour's wait is not waited"


@pytest.mark.parametrize("path", ["/v1/predictions", "/v1/predictions/"], ids=["create", "poll"])
def test_a_5xx_is_one_sentence_at_once(replicate_api, photos, path):
    """A 5xx is Replicate failing: said at once (GETs after their retries), never waited on."""
    replicate_api.unavailable = path
    started = time.monotonic()
    with pytest.raises(RemoteError, match=r"\(503: upstream connect error\)"):
        # wait=0: no sync window, so the client polls and meets the 503 on the poll path too
        run(replicate_api, photos["rocket"], timeout=30, wait=0)
    assert time.monotonic() - started < 10


def test_an_unreachable_api_is_a_remote_error(photos):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(RemoteError, match=f"could not reach {closed}"):
        encode_remote(photos["rocket"], VERSION, api_token=TOKEN, base_url=closed)


def test_a_missing_photo_is_an_image_error(replicate_api, tmp_path):
    with pytest.raises(ImageError, match=r"missing\.jpg cannot be read"):
        run(replicate_api, tmp_path / "missing.jpg")


def test_outputs_that_need_the_token_get_it_once(replicate_api, photos, rocket_bundle):
    replicate_api.outputs_need_token = True
    before = len(replicate_api.downloads)
    assert run(replicate_api, photos["rocket"]).to_bytes() == rocket_bundle.to_bytes()
    downloads = replicate_api.downloads[before:]
    assert len(downloads) == 4, "one try without the token, one retry with it, per file"
    assert sorted(auth or "" for _, auth in downloads) == ["", "", f"Bearer {TOKEN}", f"Bearer {TOKEN}"]


@pytest.mark.parametrize("missing", ["embedding.bin", "manifest.json"])
def test_one_missing_output_names_it_and_the_failed_upload(replicate_api, photos, missing):
    replicate_api.drop_output = missing
    with pytest.raises(RemoteError, match=rf"{missing} is missing because the model's upload of it failed"):
        run(replicate_api, photos["rocket"])


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
        run(replicate_api, photos["rocket"])


def test_an_oversized_output_file_is_refused(replicate_api, photos):
    replicate_api.files["big/manifest.json"] = b"{}"
    replicate_api.files["big/embedding.bin"] = bytes(client_module.MAX_OUTPUT + 1)
    replicate_api.fake_output = [
        f"{replicate_api.url}/delivery/big/{n}" for n in ("manifest.json", "embedding.bin")
    ]
    with pytest.raises(RemoteError, match=r"embedding\.bin is larger than a bundle file can be"):
        run(replicate_api, photos["rocket"])


def test_an_oversized_api_answer_is_refused(replicate_api, photos, monkeypatch):
    monkeypatch.setattr(client_module, "MAX_ANSWER", 300)  # a files API object is larger than this
    with pytest.raises(RemoteError, match=r"answer to POST /files is larger than 300 bytes"):
        run(replicate_api, photos["rocket"])


# --- where the token may go (no network: a fake transport answers, refusals happen before it) -------
ALLOWED = [
    "https://replicate.delivery/pbxt/abc/embedding.bin",
    "https://pbxt.replicate.delivery/abc/embedding.bin",
    "https://REPLICATE.DELIVERY:443/abc/embedding.bin",
    "https://api.replicate.com/v1/files/abc/download",
]
REFUSED = [
    "https://evilreplicate.delivery/abc/embedding.bin",
    "https://replicate.delivery.evil.com/abc/embedding.bin",
    "http://replicate.delivery/abc/embedding.bin",
    "http://pbxt.replicate.delivery/abc/embedding.bin",
    "https://replicate.delivery:8443/abc/embedding.bin",
    "https://replicate.com/abc/embedding.bin",
    "https://example.com/abc/embedding.bin",
    "https://api.replicate.com:8443/abc/embedding.bin",
    "http://api.replicate.com/abc/embedding.bin",
]


@pytest.mark.parametrize("url", ALLOWED + REFUSED)
def test_the_token_goes_to_the_api_and_replicate_delivery_only(url, monkeypatch):
    sent: list[dict[str, str]] = []

    def fake_send(request, cap):
        headers = {**request.headers, **request.unredirected_hdrs}
        sent.append(headers)
        return (200, {}, b"ok") if "Authorization" in headers else (401, {}, b"")

    monkeypatch.setattr(client_module, "_send", fake_send)
    allowed = url in ALLOWED
    assert token_allowed(url, "https://api.replicate.com") is allowed
    if allowed:
        assert client_module._fetch(url, TOKEN, "https://api.replicate.com") == b"ok"
        assert [h.get("Authorization") for h in sent] == [None, f"Bearer {TOKEN}"], "at most one retry"
    else:
        with pytest.raises(
            RemoteError, match="answered 401: it wants a token, and the API token is only sent"
        ):
            client_module._fetch(url, TOKEN, "https://api.replicate.com")
        assert sent == [{"User-agent": "sam2enc"}], "one request, no token"


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://replicate.delivery/x", "//replicate.delivery/x"]
)
def test_outputs_that_are_not_http_urls_are_refused_before_connecting(url, monkeypatch):
    monkeypatch.setattr(client_module, "_send", lambda *a, **k: pytest.fail("no request may be made"))
    with pytest.raises(RemoteError, match="an output is not a URL"):
        client_module._fetch(url, TOKEN, "https://api.replicate.com")


def test_plain_http_carries_the_token_only_to_a_loopback_api():
    assert token_allowed("http://127.0.0.1:8000/delivery/x", "http://127.0.0.1:8000")
    assert token_allowed("http://localhost:8000/delivery/x", "http://localhost:8000")
    assert not token_allowed("http://127.0.0.1:8001/delivery/x", "http://127.0.0.1:8000")
    assert not token_allowed("http://10.0.0.5:8000/delivery/x", "http://10.0.0.5:8000")


def test_the_token_never_follows_a_redirect():
    """A delivery host that wants the token and then redirects: the next hop must not get it."""
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            if self.path == "/final":
                body = b"payload"
                self.send_response(200)
            elif self.headers.get("Authorization"):
                body = b""
                self.send_response(302)
                self.send_header("Location", "/final")
            else:
                body = b""
                self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert client_module._fetch(f"{origin}/out/embedding.bin", TOKEN, origin) == b"payload"
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [("/out/embedding.bin", None), ("/out/embedding.bin", f"Bearer {TOKEN}"), ("/final", None)]


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
    from tests.cogserver import start_server

    proc, url = start_server(models_dir)
    try:
        bundle = encode_cog(photos["coffee"], url)
    finally:
        proc.terminate()
        proc.wait(10)
    assert bundle.to_bytes() == encode(photos["coffee"], encoder).to_bytes()


# --- what the official Python client returns (replicate==1.0.7) -----------------------------------
def test_replicate_run_outputs_give_the_verified_bundle(replicate_api, photos, rocket_bundle):
    """replicate.run → bundle_from_outputs, in Cog's order (manifest first) and reversed. replicate 1.0.7
    wraps https: and data: outputs in FileOutput (the stand-in's loopback http URLs stay strings, so they
    are wrapped here as replicate wraps https://replicate.delivery ones): read by URL without the token
    (pre-signed), never with FileOutput.read()."""
    import replicate
    from replicate.helpers import FileOutput

    client = replicate.Client(api_token=TOKEN, base_url=replicate_api.url)
    before, downloads = len(replicate_api.requests), len(replicate_api.downloads)
    with photos["rocket"].open("rb") as photo:
        urls = client.run(f"me/sam2enc:{VERSION}", input={"image": photo})
    assert [u.rsplit("/", 1)[-1] for u in urls] == ["manifest.json", "embedding.bin"]
    assert replicate_api.headers[("POST", "/v1/predictions")]["Prefer"] == "wait"
    assert prediction_gets(replicate_api, before) <= 1, "replicate.run uses sync mode too"
    file_outputs = [FileOutput(url, client) for url in urls]
    for outputs in (urls, file_outputs, file_outputs[::-1]):
        bundle = bundle_from_outputs(outputs, token=TOKEN, api_origin=replicate_api.url)
        assert bundle.to_bytes() == rocket_bundle.to_bytes()
    assert {auth for _, auth in replicate_api.downloads[downloads:]} == {None}

    replicate_api.inline_outputs = True  # what Cog answers without an upload URL: data: URIs
    with photos["rocket"].open("rb") as photo:
        inline = client.run(f"me/sam2enc:{VERSION}", input={"image": photo})
    assert [type(o) for o in inline] == [FileOutput, FileOutput]
    assert bundle_from_outputs(inline).to_bytes() == rocket_bundle.to_bytes()


def test_a_file_output_on_another_host_never_gets_the_token(replicate_api):
    """FileOutput.read() would send the replicate client's token to any host: we read .url instead."""
    import replicate
    from replicate.helpers import FileOutput

    seen: list[str | None] = []

    class WantsTheToken(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), WantsTheToken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    other = f"http://127.0.0.1:{server.server_address[1]}"
    client = replicate.Client(api_token=TOKEN, base_url=replicate_api.url)
    outputs = [FileOutput(f"{other}/x/{name}", client) for name in ("manifest.json", "embedding.bin")]
    try:
        with pytest.raises(RemoteError, match=r"answered 401: it wants a token"):
            bundle_from_outputs(outputs, token=TOKEN, api_origin=replicate_api.url)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [None], "one request, without the token"
