"""A stand-in for Replicate's HTTP API on 127.0.0.1 that runs the real predictor in-process.

Implements what the Replicate Python client and the browser app use: ``POST /v1/predictions``,
``GET /v1/predictions/<id>`` (both need ``Authorization: Bearer <token>``) and pre-signed output
downloads under ``/delivery/`` (no token, like replicate.delivery). Output URLs are listed manifest
first, as Cog lists them when the small file finishes uploading first.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sam2enc.service import EncoderService


class ReplicateStandIn:
    def __init__(self, models_dir: Path, token: str) -> None:
        self.service = EncoderService(models_dir, device="cpu")
        self.token = token
        self.predictions: dict[str, dict] = {}
        self.files: dict[str, bytes] = {}
        self.seen_authorization: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()

    def _run(self, prediction: dict, image: str) -> None:
        prediction["status"] = "processing"
        try:
            header, _, encoded = image.partition(",")
            if not header.startswith("data:"):
                raise ValueError("this stand-in only takes data: URIs")
            upload = Path(tempfile.mkdtemp()) / "upload"
            upload.write_bytes(base64.b64decode(encoded))
            files = self.service.encode(upload)
        except Exception as exc:  # reported like Replicate does: status failed + the message
            prediction.update(status="failed", error=str(exc))
            return
        urls = []
        for path in (files.manifest, files.embedding):
            key = f"{prediction['id']}/{path.name}"
            self.files[key] = path.read_bytes()
            urls.append(f"{self.url}/delivery/{key}")
        prediction.update(status="succeeded", output=urls)

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
                auth = self.headers.get("Authorization", "")
                standin.seen_authorization.append(auth)
                if auth in (f"Bearer {standin.token}", f"Token {standin.token}"):
                    return True
                self._json(401, {"title": "Unauthenticated", "detail": "You did not pass a valid token"})
                return False

            def do_POST(self):
                if self.path != "/v1/predictions":
                    return self._json(404, {"detail": "Not found"})
                if not self._authorized():
                    return None
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                pid = uuid.uuid4().hex[:20]
                prediction = {
                    "id": pid,
                    "model": "sam2enc/standin",
                    "version": body.get("version"),
                    "input": {"image": "<data uri>"},
                    "status": "starting",
                    "output": None,
                    "error": None,
                    "logs": "",
                    "created_at": "2026-11-25T00:00:00Z",
                    "urls": {"get": f"{standin.url}/v1/predictions/{pid}", "cancel": ""},
                }
                standin.predictions[pid] = prediction
                threading.Thread(target=standin._run, args=(prediction, body["input"]["image"])).start()
                return self._json(201, prediction)

            def do_GET(self):
                if match := re.fullmatch(r"/v1/predictions/(\w+)", self.path):
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
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return None
                return self._json(404, {"detail": "Not found"})

        return Handler
