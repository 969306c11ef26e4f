"""A stand-in for Replicate's HTTP API on 127.0.0.1 that runs the real predictor in-process.

Implements what the Replicate Python client and the browser app call: ``POST /v1/files`` (the
client uploads file inputs there first), ``POST /v1/predictions``,
``POST /v1/models/<owner>/<name>/predictions``, ``GET /v1/predictions/<id>`` and
``POST /v1/predictions/<id>/cancel`` — all of them need ``Authorization: Bearer|Token <token>``, as
Replicate does — plus pre-signed output downloads under ``/delivery/`` (no token, like
replicate.delivery). Inputs may be data: URIs, this server's file URLs, or other http(s) URLs.
Output URLs are listed manifest first, as Cog lists them when the small file finishes uploading first.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
import threading
import time
import urllib.request
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sam2enc.service import EncoderService

PREDICTION = re.compile(r"/v1/predictions/(\w+)")
MODEL_PREDICTIONS = re.compile(r"/v1/models/[\w.-]+/[\w.-]+/predictions")


class ReplicateStandIn:
    """Knobs for tests: ``delay`` holds each prediction before it runs; ``fake_output`` replaces
    the real output (a wrong model); ``requests`` records (method, path) of every API call."""

    def __init__(self, models_dir: Path, token: str) -> None:
        self.service = EncoderService(models_dir, device="cpu")
        self.token = token
        self.predictions: dict[str, dict] = {}
        self.uploads: dict[str, bytes] = {}
        self.files: dict[str, bytes] = {}
        self.seen_authorization: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.delay = 0.0
        self.fake_output: object = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _image(self, image: str) -> bytes:
        if image.startswith("data:"):
            return base64.b64decode(image.partition(",")[2])
        if match := re.fullmatch(re.escape(self.url) + r"/v1/files/(\w+)", image):
            return self.uploads[match.group(1)]
        with urllib.request.urlopen(image, timeout=30) as response:
            return response.read()

    def _run(self, prediction: dict, image: str) -> None:
        time.sleep(self.delay)
        if prediction["status"] == "canceled":
            return
        prediction["status"] = "processing"
        if self.fake_output is not None:
            prediction.update(status="succeeded", output=self.fake_output)
            return
        try:
            upload = Path(tempfile.mkdtemp()) / "upload"
            upload.write_bytes(self._image(image))
            files = self.service.encode(upload)
        except Exception as exc:  # reported like Replicate does: status failed + the model's message
            prediction.update(status="failed", error=str(exc))
            return
        urls = []
        for path in (files.manifest, files.embedding):
            key = f"{prediction['id']}/{path.name}"
            self.files[key] = path.read_bytes()
            urls.append(f"{self.url}/delivery/{key}")
        prediction.update(status="succeeded", output=urls)

    def _create(self, body: dict, model: str | None) -> dict:
        pid = uuid.uuid4().hex[:20]
        image = body["input"]["image"]
        prediction = {
            "id": pid,
            "model": model or "sam2enc/standin",
            "version": body.get("version", "standin-version"),
            "input": {"image": "<data uri>" if image.startswith("data:") else image},
            "status": "starting",
            "output": None,
            "error": None,
            "logs": "",
            "created_at": "2026-11-25T00:00:00Z",
            "urls": {
                "get": f"{self.url}/v1/predictions/{pid}",
                "cancel": f"{self.url}/v1/predictions/{pid}/cancel",
            },
        }
        self.predictions[pid] = prediction
        threading.Thread(target=self._run, args=(prediction, image), daemon=True).start()
        return prediction

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
            "checksums": {},
            "metadata": {},
            "created_at": "2026-11-25T00:00:00Z",
            "expires_at": None,
            "urls": {"get": f"{self.url}/v1/files/{fid}"},
        }

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                standin.requests.append((self.command, self.path))
                auth = self.headers.get("Authorization", "")
                standin.seen_authorization.append(auth)
                if auth in (f"Bearer {standin.token}", f"Token {standin.token}"):
                    return True
                self._json(401, {"title": "Unauthenticated", "detail": "You did not pass a valid token"})
                return False

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                known = self.path in ("/v1/predictions", "/v1/files") or MODEL_PREDICTIONS.fullmatch(
                    self.path
                )
                cancel = re.fullmatch(r"/v1/predictions/(\w+)/cancel", self.path)
                if not (known or cancel):
                    return self._json(404, {"detail": "Not found"})
                if not self._authorized():
                    return None
                if cancel:
                    prediction = standin.predictions[cancel.group(1)]
                    if prediction["status"] in ("starting", "processing"):
                        prediction["status"] = "canceled"
                    return self._json(200, prediction)
                if self.path == "/v1/files":
                    return self._json(201, standin._upload(self.headers["Content-Type"], body))
                model = self.path.split("/")[3:5] if self.path.startswith("/v1/models/") else None
                return self._json(201, standin._create(json.loads(body), model and "/".join(model)))

            def do_GET(self):
                if match := PREDICTION.fullmatch(self.path):
                    if not self._authorized():
                        return None
                    prediction = standin.predictions.get(match.group(1))
                    return (
                        self._json(200, prediction)
                        if prediction
                        else self._json(404, {"detail": "Not found"})
                    )
                if self.path.startswith("/delivery/") and (payload := standin.files.get(self.path[10:])):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return None
                return self._json(404, {"detail": "Not found"})

        return Handler
