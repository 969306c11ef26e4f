"""A stand-in for Replicate's HTTP API on 127.0.0.1 that runs the real predictor in-process.

It behaves as Replicate's published schema (``tests/fixtures/replicate-openapi.json``) says, and every
request it receives and every answer it gives is checked against that schema by
``tests/replicate_contract.py``; what does not fit is collected in ``violations`` (the tests assert it
stays empty). Operations: ``POST /v1/files`` (multipart, as the official clients upload inputs),
``GET /v1/models/<owner>/<name>``, ``GET /v1/models/<owner>/<name>/versions/<id>`` (what
``replicate.run`` asks), ``POST /v1/models/<owner>/<name>/predictions`` (official models only),
``POST /v1/predictions`` (by version), ``GET /v1/predictions/<id>`` and
``POST /v1/predictions/<id>/cancel``, all needing ``Authorization: Bearer|Token <token>``; errors are
``application/problem+json``. Output files are served under ``/delivery/`` on the same origin (a
loopback stand-in for replicate.delivery), listed manifest first, as Cog lists them when the small
file finishes uploading first.

Sync mode: a create with ``Prefer: wait=N`` (or ``wait``: 60 s) is answered once the prediction is
final (201) or after N seconds with the unfinished prediction (202, "does not yet have all outputs"),
as the schema describes; N outside 1..60 is refused (422), as the header's description says.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sam2enc.service import EncoderService
from tests import replicate_contract as contract

VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"  # 64 hex, like Replicate's
OFFICIAL_VERSION = "9dcd6d78e7c6560c340d916fe32e9f24aabfa331e5cce95fe31f77fb03121426"
PREDICTION = re.compile(r"/v1/predictions/(\w+)")
CANCEL = re.compile(r"/v1/predictions/(\w+)/cancel")
MODEL = re.compile(r"/v1/models/([\w.-]+)/([\w.-]+)")
MODEL_PREDICTIONS = re.compile(r"/v1/models/([\w.-]+)/([\w.-]+)/predictions")
MODEL_VERSION = re.compile(r"/v1/models/([\w.-]+)/([\w.-]+)/versions/([\w.-]+)")
PREFER_WAIT = re.compile(r"wait(?:=(\d+))?")
MAX_WAIT = 60  # seconds: "n is a number of seconds between 1 and 60"
DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?")
TERMINAL = ("succeeded", "failed", "canceled", "aborted")
# replicate-javascript#347: {"detail":"The requested resource could not be found.","status":404}
NOT_FOUND = "The requested resource could not be found."
# replicate-python#320: what predictions.create answers for a model that is not official
NO_VERSION = "The specified version does not exist (or perhaps you don't have permission to use it?)"


def default_models() -> dict[str, dict]:
    """owner/name → versions (oldest first) and whether it is an official model.

    ``me/sam2enc`` is a user's own model; ``abc`` is an older version of it (the id tests/test_web.py
    uses). ``acme/official`` is an official model, ``me/empty`` was created but never pushed, and
    ``other/private`` exists but this token cannot see it."""
    return {
        "me/sam2enc": {"versions": ["abc", VERSION], "official": False, "visible": True},
        "acme/official": {"versions": [OFFICIAL_VERSION], "official": True, "visible": True},
        "me/empty": {"versions": [], "official": False, "visible": True},
        "other/private": {"versions": ["f" * 64], "official": False, "visible": False},
    }


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def parse_duration(text: str) -> float | None:
    """``Cancel-After`` as the schema describes it: ``30``, ``30s``, ``5m``, ``1h30m45s``."""
    match = DURATION.fullmatch(text.strip())
    if not text.strip() or not match:
        return None
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


class ReplicateStandIn:
    """Knobs for tests (``reset()`` puts them back):

    - ``delay``: seconds a prediction stays ``starting`` (queued) before it runs;
    - ``duration``: seconds a prediction stays ``processing`` at least (a time-based prediction: the
      real predictor's output, delivered no sooner than this after it started);
    - ``wait_scale``: real seconds per ``Prefer: wait`` second (as ``deadline_scale``);
    - ``terminal``: end every prediction in this status instead of running it (``aborted``, ...);
    - ``fake_output``: replaces the real output (a wrong model);
    - ``drop_output``: leave this file out of a succeeded output, as when Cog's upload of it failed;
    - ``inline_outputs``: outputs as data: URIs (what Cog answers when it has no upload URL);
    - ``outputs_need_token``: output downloads answer 401 without ``Authorization``;
    - ``throttle``: the next N API requests (matching ``throttle_methods``) answer 429 with
      ``Retry-After: retry_after``;
    - ``unavailable``: API requests whose path starts with this answer 503 (``Retry-After: 0``), as
      Replicate does when a backend is down;
    - ``deadline_scale``: real seconds per ``Cancel-After`` second (Replicate's minimum is 5 s; tests
      shrink time instead of waiting);
    - ``models``: see ``default_models``;
    - ``poll_hold``: seconds each ``GET /v1/predictions/<id>`` answer is held (a slow network): a client
      stuck in a poll cannot cancel its own prediction until it returns.

    Records: ``requests`` (method, path), ``seen_authorization``, ``downloads`` (path, Authorization or
    None), ``headers`` (the last request's headers per (method, path)), ``violations`` (schema),
    ``max_in_flight`` (most predictions created and not yet final at once; ``reset()`` zeroes it),
    ``polls_held`` (GETs being held now), ``cancels_while_held`` (``polls_held`` as each cancel came)."""

    def __init__(self, models_dir: Path, token: str) -> None:
        self.service = EncoderService(models_dir, device="cpu")
        self.token = token
        self.predictions: dict[str, dict] = {}
        self.uploads: dict[str, bytes] = {}
        self.files: dict[str, bytes] = {}
        self.seen_authorization: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.downloads: list[tuple[str, str | None]] = []
        self.headers: dict[tuple[str, str], dict[str, str]] = {}
        self.violations: list[str] = []
        self.finished: dict[str, threading.Event] = {}
        self.created: dict[str, dict] = {}  # each prediction as its create answered (no sync window)
        self.encoded: dict[str, dict[str, bytes]] = {}
        self.in_flight = 0
        self._lock = threading.Lock()
        self.reset()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        self.delay = 0.0
        self.duration = 0.0
        self.wait_scale = 1.0
        self.max_in_flight = 0
        self.terminal: str | None = None
        self.fake_output: object = None
        self.drop_output: str | None = None
        self.outputs_need_token = False
        self.inline_outputs = False
        self.throttle = 0
        self.throttle_methods = ("GET", "POST")
        self.retry_after = "1"
        self.unavailable: str | None = None
        self.deadline_scale = 1.0
        self.models = default_models()
        self.poll_hold = 0.0
        self.polls_held = 0
        self.cancels_while_held: list[int] = []

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def take_violations(self) -> list[str]:
        """What broke the schema since the last call (and forget it)."""
        found, self.violations[:] = list(self.violations), []
        return found

    # --- the model --------------------------------------------------------------------------------
    def _image(self, image: str) -> bytes:
        if image.startswith("data:"):
            return base64.b64decode(image.partition(",")[2])
        if match := re.fullmatch(re.escape(self.url) + r"/v1/files/(\w+)", image):
            return self.uploads[match.group(1)]
        with urllib.request.urlopen(image, timeout=30) as response:
            return response.read()

    def encode(self, photo: bytes) -> dict[str, bytes]:
        """The real predictor's two files for ``photo`` ({name: bytes}, manifest first), computed once per
        photo: the encoder is deterministic, and a time-based prediction should take ``duration``, not
        however long a shared CPU needs."""
        key = hashlib.sha256(photo).hexdigest()
        if key not in self.encoded:
            upload = Path(tempfile.mkdtemp()) / "upload"
            upload.write_bytes(photo)
            files = self.service.encode(upload)
            self.encoded[key] = {path.name: path.read_bytes() for path in (files.manifest, files.embedding)}
        return self.encoded[key]

    def _finish(self, prediction: dict, status: str, **fields: object) -> None:
        with self._lock:
            if prediction["status"] in TERMINAL:
                return
            started = prediction.get("started_at")
            prediction.update(status=status, completed_at=now(), **fields)
            if started:
                prediction["metrics"] = {"predict_time": 0.1, "total_time": 0.2}
            self.in_flight -= 1
        self.finished[prediction["id"]].set()

    def _run(self, prediction: dict, image: str, deadline: float | None) -> None:
        """Queued for ``delay``, then run; a deadline reached while queued aborts, while running cancels."""
        until = time.monotonic() + self.delay
        while time.monotonic() < until and prediction["status"] == "starting":
            if deadline is not None and time.monotonic() > deadline:
                return self._finish(prediction, "aborted")
            time.sleep(0.01)
        if prediction["status"] != "starting":
            return None
        if self.terminal is not None:
            return self._finish(prediction, self.terminal)
        prediction.update(status="processing", started_at=now())
        runs_until = time.monotonic() + self.duration
        if self.fake_output is not None:
            return self._deliver(prediction, self.fake_output, runs_until, deadline)
        try:
            outputs = self.encode(self._image(image))
        except Exception as exc:  # reported like Replicate does: status failed + the model's message
            return self._finish(prediction, "failed", error=str(exc))
        urls = []
        for name, payload in outputs.items():
            if name == self.drop_output:  # Cog logs a failed upload and carries on
                prediction["logs"] += f"Failed to upload file {name}: upload timed out\n"
                continue
            key = f"{prediction['id']}/{name}"
            self.files[key] = payload
            urls.append(f"{self.url}/delivery/{key}")
            if self.inline_outputs:
                urls[-1] = "data:application/octet-stream;base64," + base64.b64encode(payload).decode()
        return self._deliver(prediction, urls, runs_until, deadline)

    def _deliver(self, prediction: dict, output: object, runs_until: float, deadline: float | None) -> None:
        """Succeed with ``output`` once the prediction has run for ``duration`` (unless canceled)."""
        while time.monotonic() < runs_until and prediction["status"] == "processing":
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if deadline is not None and time.monotonic() > deadline:
            return self._finish(prediction, "canceled")
        return self._finish(prediction, "succeeded", output=output)

    def _create(self, body: dict, model: str, version: str, cancel_after: float | None) -> dict:
        pid = uuid.uuid4().hex[:26]
        image = body["input"]["image"]
        prediction = {
            "id": pid,
            "model": model,
            "version": version,
            "input": {"image": image},
            "status": "starting",
            "output": None,
            "data_removed": False,
            "error": None,
            "logs": "",
            "source": "api",
            "created_at": now(),
            "urls": {
                "web": f"https://replicate.com/p/{pid}",
                "get": f"{self.url}/v1/predictions/{pid}",
                "cancel": f"{self.url}/v1/predictions/{pid}/cancel",
            },
        }
        deadline = None
        if cancel_after is not None:
            deadline = time.monotonic() + cancel_after * self.deadline_scale
            prediction["deadline"] = now()  # absolute time; the value is not read by any client
        with self._lock:
            self.predictions[pid] = prediction
            self.finished[pid] = threading.Event()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            # What the create answers without a sync window: the prediction as it was created. (Sending
            # the live dict let a fast run thread finish first, so the answer already said succeeded.)
            self.created[pid] = json.loads(json.dumps(prediction))
        threading.Thread(target=self._run, args=(prediction, image, deadline), daemon=True).start()
        return prediction

    def _version(self, ref: str) -> tuple[str, str] | None:
        """(model, version id) for ``id``, ``owner/name:id`` or an official ``owner/name``."""
        name, _, vid = ref.rpartition(":") if ":" in ref else ("", "", ref)
        for model_name, model in self.models.items():
            if not model["visible"]:
                continue
            if ":" not in ref and ref == model_name and model["official"]:
                return model_name, "hidden"
            if vid in model["versions"] and name in ("", model_name):
                return model_name, vid
        return None

    def _upload(self, content_type: str, body: bytes) -> dict:
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        part = next(
            p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "content"
        )
        payload = part.get_payload(decode=True)
        fid = uuid.uuid4().hex[:16]
        self.uploads[fid] = payload
        return {
            "id": fid,
            "name": part.get_filename() or "file",
            "content_type": part.get_content_type(),
            "size": len(payload),
            "etag": fid,
            "checksums": {"sha256": hashlib.sha256(payload).hexdigest()},
            "metadata": {},
            "created_at": now(),
            "expires_at": datetime.fromtimestamp(time.time() + 86400, UTC).isoformat().replace("+00:00", "Z"),
            "urls": {"get": f"{self.url}/v1/files/{fid}"},
        }

    def _model_version(self, owner: str, name: str, vid: str) -> dict | None:
        model = self.models.get(f"{owner}/{name}")
        if model is None or not model["visible"] or vid not in model["versions"]:
            return None
        return {"id": vid, "created_at": now(), "cog_version": "0.23.1", "openapi_schema": {}}

    def _model(self, owner: str, name: str) -> dict | None:
        model = self.models.get(f"{owner}/{name}")
        if model is None or not model["visible"]:
            return None
        latest = model["versions"][-1] if model["versions"] else None
        return {
            "url": f"https://replicate.com/{owner}/{name}",
            "owner": owner,
            "name": name,
            "description": None,
            "visibility": "public" if model["official"] else "private",
            "github_url": None,
            "paper_url": None,
            "license_url": None,
            "run_count": 0,
            "cover_image_url": None,
            "default_example": None,
            "is_official": model["official"],
            "latest_version": latest
            and {"id": latest, "created_at": now(), "cog_version": "0.23.1", "openapi_schema": {}},
        }

    # --- HTTP -------------------------------------------------------------------------------------
    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict, kind: str = "application/json", **headers: str) -> None:
                data = json.dumps(body).encode()
                if contract.operation(self.command, self.path):
                    standin.violations += contract.check_response(self.command, self.path, status, kind, data)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(data)

            def _problem(self, status: int, title: str, detail: str, **headers: str) -> None:
                self._send(
                    status,
                    {"title": title, "detail": detail, "status": status},
                    "application/problem+json",
                    **headers,
                )

            def _accept(self, body: bytes) -> bool:
                """Record and check the request; False once an error (401, 429, 503) has been answered."""
                standin.requests.append((self.command, self.path))
                standin.headers[(self.command, self.path)] = dict(self.headers)
                standin.violations += contract.check_request(self.command, self.path, self.headers, body)
                if standin.throttle and self.command in standin.throttle_methods:
                    standin.throttle -= 1
                    self._problem(
                        429,
                        "Too Many Requests",
                        "Request was throttled.",
                        Retry_After=standin.retry_after,
                    )
                    return False
                if standin.unavailable and self.path.startswith(standin.unavailable):
                    self._problem(503, "Service Unavailable", "upstream connect error", Retry_After="0")
                    return False
                auth = self.headers.get("Authorization", "")
                standin.seen_authorization.append(auth)
                if auth in (f"Bearer {standin.token}", f"Token {standin.token}"):
                    return True
                self._problem(401, "Unauthenticated", "You did not pass a valid authentication token")
                return False

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not contract.operation("POST", self.path):
                    return self._problem(404, "Not found", NOT_FOUND)
                if not self._accept(body):
                    return None
                if cancel := CANCEL.fullmatch(self.path):
                    standin.cancels_while_held.append(standin.polls_held)
                    prediction = standin.predictions.get(cancel.group(1))
                    if prediction is None:
                        return self._problem(404, "Not found", NOT_FOUND)
                    standin._finish(prediction, "canceled")
                    return self._send(200, prediction)
                if self.path == "/v1/files":
                    return self._send(201, standin._upload(self.headers["Content-Type"], body))
                if self.path not in ("/v1/predictions",) and not MODEL_PREDICTIONS.fullmatch(self.path):
                    return self._problem(404, "Not found", NOT_FOUND)
                try:
                    request = json.loads(body)
                except ValueError:
                    return self._problem(400, "Bad request", "the body is not JSON")
                wait = None
                if (raw := self.headers.get("Prefer")) is not None:
                    match = PREFER_WAIT.fullmatch(raw.strip())
                    wait = int(match.group(1) or MAX_WAIT) if match else None
                    if wait is None or not 1 <= wait <= MAX_WAIT:
                        return self._problem(
                            422, "Invalid Prefer", "Prefer must be wait or wait=n, n from 1 to 60"
                        )
                cancel_after = None
                if (raw := self.headers.get("Cancel-After")) is not None:
                    cancel_after = parse_duration(raw)
                    if cancel_after is None or cancel_after < 5:
                        return self._problem(
                            422, "Invalid Cancel-After", "Cancel-After must be a duration of at least 5s"
                        )
                if match := MODEL_PREDICTIONS.fullmatch(self.path):
                    name = f"{match.group(1)}/{match.group(2)}"
                    model = standin.models.get(name)
                    # Only official models run by name (replicate-javascript#347 answers 404 for others).
                    if model is None or not model["visible"] or not model["official"]:
                        return self._problem(404, "Not found", NOT_FOUND)
                    target = (name, "hidden")
                else:
                    target = standin._version(str(request.get("version", "")))
                    if target is None:  # replicate-python#320
                        return self._problem(422, "Invalid version", NO_VERSION)
                image = (request.get("input") or {}).get("image")
                if not isinstance(image, str):  # Replicate checks inputs against the model's schema
                    return self._problem(422, "Input validation failed", "- (root): image is required")
                prediction = standin._create(request, *target, cancel_after)
                if wait is None:
                    return self._send(201, standin.created[prediction["id"]])
                standin.finished[prediction["id"]].wait(wait * standin.wait_scale)
                with standin._lock:  # a snapshot: the run thread may be finishing it right now
                    answer = json.loads(json.dumps(prediction))
                return self._send(201 if answer["status"] in TERMINAL else 202, answer)

            def do_GET(self):
                if self.path.startswith("/delivery/"):
                    return self._download()
                if not contract.operation("GET", self.path):
                    return self._problem(404, "Not found", NOT_FOUND)
                if not self._accept(b""):
                    return None
                if match := PREDICTION.fullmatch(self.path):
                    prediction = standin.predictions.get(match.group(1))
                    if prediction is None:
                        return self._problem(404, "Not found", NOT_FOUND)
                    if standin.poll_hold:
                        with standin._lock:
                            standin.polls_held += 1
                        time.sleep(standin.poll_hold)
                        with standin._lock:
                            standin.polls_held -= 1
                    with standin._lock:
                        answer = json.loads(json.dumps(prediction))
                    return self._send(200, answer)
                if (match := MODEL.fullmatch(self.path)) and (model := standin._model(*match.groups())):
                    return self._send(200, model)
                match = MODEL_VERSION.fullmatch(self.path)
                if match and (version := standin._model_version(*match.groups())):
                    return self._send(200, version)
                return self._problem(404, "Not found", NOT_FOUND)

            def _download(self):
                auth = self.headers.get("Authorization")
                standin.downloads.append((self.path, auth))
                payload = standin.files.get(self.path[len("/delivery/") :])
                if standin.outputs_need_token and auth not in (
                    f"Bearer {standin.token}",
                    f"Token {standin.token}",
                ):
                    return self._problem(401, "Unauthenticated", "this file needs your API token")
                if payload is None:
                    return self._problem(404, "Not found", NOT_FOUND)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return None

        return Handler


def standin_fixture(token: str):
    """This test module's stand-in, started once per module: ``standin = standin_fixture(TOKEN)``."""
    import pytest

    @pytest.fixture(scope="module", name="standin")
    def fixture(models_dir):
        api = ReplicateStandIn(models_dir, token)
        yield api
        api.close()

    return fixture


def checked_api_fixture(name: str = "api"):
    """The module's stand-in for one test: afterwards it is reset, and nothing the test sent or was
    answered may have broken Replicate's schema. ``api = checked_api_fixture()``."""
    import pytest

    @pytest.fixture(name=name)
    def fixture(standin):
        standin.take_violations()
        yield standin
        standin.reset()
        assert standin.take_violations() == [], "a request or answer broke Replicate's schema"

    return fixture
