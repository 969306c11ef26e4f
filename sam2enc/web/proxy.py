"""A small proxy so a page can call Replicate with the user's own token.

Replicate's API sends no CORS headers, so the page talks to this server instead, on the same origin
as the app. It forwards exactly three API calls — ``POST /api/files`` (the photo, multipart, as
Replicate's clients upload it: data: URIs are meant for files under 1 MB), ``POST /api/predictions``
and ``GET /api/predictions/<id>`` — with the caller's ``Authorization`` header passed through
unchanged, and fetches output files from the upstream's own origin or Replicate's delivery hosts only,
following no redirect elsewhere. It stores nothing, never logs a header or a query string, caps
request bodies, answers and upstream time, and answers 404/405 to everything else. It also serves
the app, onnxruntime-web from node_modules, and the decoder graphs from the models directory.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import assets

log = logging.getLogger("sam2enc.web")

STATIC = Path(__file__).parent / "static"
ROOT = Path(__file__).resolve().parents[2]
ORT_DIST = ROOT / "node_modules" / "onnxruntime-web" / "dist"
DEFAULT_UPSTREAM = "https://api.replicate.com/v1"
MAX_BODY = 30 * 1024 * 1024  # a 20 MB photo as a base64 data URI, plus JSON
MAX_ANSWER = 64 * 1024 * 1024  # an upstream answer or output file: the embedding is 8 MiB
UPSTREAM_TIMEOUT = 60.0
MODEL_FILES = ("decoder.onnx", "decoder_hires.onnx", "model.json")
DELIVERY_HOSTS = ("replicate.delivery",)
PREDICTION_ID = re.compile(r"/api/predictions/([A-Za-z0-9_-]{1,64})")


class Proxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], upstream: str, models_dir: Path) -> None:
        self.upstream = upstream.rstrip("/")
        self.models_dir = Path(models_dir)
        super().__init__(address, Handler)

    def file_host_allowed(self, url: str) -> bool:
        """The upstream's own origin (scheme, host and port), or Replicate's delivery hosts over https."""
        parts, upstream = urllib.parse.urlsplit(url), urllib.parse.urlsplit(self.upstream)
        if (parts.scheme, parts.netloc) == (upstream.scheme, upstream.netloc):
            return True
        host = parts.hostname or ""
        return parts.scheme == "https" and any(host == h or host.endswith("." + h) for h in DELIVERY_HOSTS)


class RedirectRefused(urllib.error.URLError):
    pass


class _Redirects(urllib.request.HTTPRedirectHandler):
    """API calls never follow a redirect (it would carry the token along); file downloads follow one
    only to a host they could have fetched directly, so an allowed host cannot open the way to others."""

    def __init__(self, allowed) -> None:
        self.allowed = allowed

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.has_header("Authorization") or not self.allowed(newurl):
            raise RedirectRefused("redirect refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Handler(BaseHTTPRequestHandler):
    server: Proxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:
        """Method, path without its query, status: never headers (the token), never query strings."""
        path = self.path.split("?", 1)[0]
        log.info("%s %s %s", self.command, path, args[1] if len(args) > 1 else "")

    # --- routing -----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if match := PREDICTION_ID.fullmatch(path):
            return self._forward("GET", f"{self.server.upstream}/predictions/{match.group(1)}")
        if path == "/api/files":
            return self._file()
        if assets.for_server(self.server).serve(self, path):  # app, runtime, models, demo: with ETags
            return None
        return self._error(404, "not found")

    def do_POST(self) -> None:
        if self.path == "/api/predictions":
            return self._forward("POST", f"{self.server.upstream}/predictions")
        if self.path == "/api/files":  # the photo, uploaded as Replicate's clients do it
            if not self.headers.get("Content-Type", "").startswith("multipart/form-data;"):
                return self._refuse(415, "upload the photo as multipart/form-data")
            return self._forward("POST", f"{self.server.upstream}/files", self.headers["Content-Type"])
        return self._error(
            405 if self._known() else 404, "method not allowed" if self._known() else "not found"
        )

    def do_PUT(self) -> None:
        self._error(405 if self._known() else 404, "method not allowed")

    do_DELETE = do_PATCH = do_PUT

    def _known(self) -> bool:
        path = self.path.split("?", 1)[0]
        return path in ("/", "/api/predictions", "/api/files") or bool(PREDICTION_ID.fullmatch(path))

    # --- handlers ----------------------------------------------------------------------------------
    def _forward(self, method: str, url: str, kind: str = "application/json") -> None:
        body = None
        if method == "POST":
            body = self._body()
            if body is None:
                return None
        headers = {"Content-Type": kind, "Accept": "application/json"}
        if auth := self.headers.get("Authorization"):
            headers["Authorization"] = auth
        self._relay(urllib.request.Request(url, body, headers, method=method))

    def _file(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        url = (query.get("url") or [""])[0]
        if not url.startswith(("https://", "http://")) or not self.server.file_host_allowed(url):
            return self._error(403, "only the upstream's output files can be fetched")
        self._relay(urllib.request.Request(url))  # pre-signed: no token goes to file hosts

    def _body(self) -> bytes | None:
        """The request body, or None once an error has been sent (and the connection marked to close)."""
        raw = self.headers.get("Content-Length")
        if "Transfer-Encoding" in self.headers or raw is None:
            return self._refuse(411, "send the body with a Content-Length")
        if not raw.isdigit():
            return self._refuse(400, "Content-Length is not a number of bytes")
        if int(raw) > MAX_BODY:
            return self._refuse(413, f"request body over {MAX_BODY // (1024 * 1024)} MB")
        return self.rfile.read(int(raw))

    def _refuse(self, status: int, message: str) -> None:
        self.close_connection = True  # the unread body must not be parsed as the next request
        self._error(status, message)

    def _relay(self, request: urllib.request.Request) -> None:
        opener = urllib.request.build_opener(_Redirects(self.server.file_host_allowed))
        try:
            with opener.open(request, timeout=UPSTREAM_TIMEOUT) as response:
                status, kind = response.status, response.headers.get("Content-Type")
                payload = response.read(MAX_ANSWER + 1)
        except RedirectRefused:
            return self._error(502, "the upstream redirected to a host this proxy does not fetch from")
        except urllib.error.HTTPError as exc:
            status, payload, kind = exc.code, exc.read(MAX_ANSWER + 1), exc.headers.get("Content-Type")
        except TimeoutError:
            return self._error(504, "the upstream did not answer in time")
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return self._error(504, "the upstream did not answer in time")
            return self._error(502, "the upstream could not be reached")
        if len(payload) > MAX_ANSWER:
            return self._error(502, "the upstream's answer is too large")
        self._send(status, payload, kind or "application/octet-stream")

    def _static(self, path: Path, root: Path | None = None) -> None:
        path = path.resolve()
        if root is not None and root.resolve() not in path.parents:
            return self._error(404, "not found")
        if not path.is_file():
            return self._error(404, "not found")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix == ".mjs":
            kind = "text/javascript"
        self._send(200, path.read_bytes(), kind)

    def _error(self, status: int, message: str) -> None:
        self._send(status, f'{{"detail": "{message}"}}'.encode(), "application/json")

    def _send(self, status: int, payload: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        # Cross-origin isolation lets onnxruntime-web use WASM threads (SharedArrayBuffer).
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def serve(host: str, port: int, upstream: str, models_dir: Path) -> Proxy:
    return Proxy((host, port), upstream, models_dir)
