"""A small proxy so a page can call Replicate with the user's own token.

Replicate's API sends no CORS headers, so the page talks to this server instead, on the same origin
as the app. It forwards exactly these API calls, with the caller's ``Authorization`` header passed
through unchanged (upstream = ``--upstream``, Replicate's ``https://api.replicate.com/v1`` by default):

- ``POST /api/files`` → ``POST {upstream}/files``: the photo, multipart, as Replicate's clients upload
  it (data: URIs are meant for files under 1 MB);
- ``GET /api/models/<owner>/<name>`` → ``GET {upstream}/models/<owner>/<name>``: so the page can
  resolve a user's own ``owner/name`` to ``latest_version.id`` (only official models run by name);
- ``POST /api/predictions`` → ``POST {upstream}/predictions``, with ``Cancel-After: <n>s`` added
  (``--cancel-after``, 600 s by default; Replicate cancels, or aborts if it never started, a
  prediction still running then), and the caller's ``Prefer: wait=N`` (sync mode, N from 1 to 60)
  passed on when it is exactly that (anything else is dropped); such a create may take N s longer;
- ``GET /api/predictions/<id>`` and ``POST /api/predictions/<id>/cancel``;
- ``GET /api/files?url=<output URL>``: an output file, from the upstream's own origin or
  ``https://replicate.delivery`` / ``https://*.replicate.delivery`` (port 443) only. It is fetched
  without the token first (delivery links are usually pre-signed); if that answers 401/403 and it carried
  ``Authorization``, it is retried once with it, at the URL that asked — to those hosts only, never over
  plain http except to a loopback upstream. A download follows a redirect (at most 3) only to a URL it
  could fetch directly and never with the token; API calls follow none (``sam2enc.policy``).

Upstream answers, errors included (Replicate's are ``application/problem+json``), are passed through
with their status, type and ``Retry-After`` (listed in ``Access-Control-Expose-Headers``, as the hosted
handler does, so a page's backoff can read it). The proxy's own refusals are problem+json too, with
``"source": "proxy"``, so the page can tell "the local proxy refused" from "Replicate refused": 400/411
malformed bodies, 413 bodies over 100 MB (Replicate's files limit), 403 output URLs on other hosts and
API calls a page on another origin sends (its ``Origin`` is not this server's), 404/405 every other
path, 502 an unreachable or oversized upstream, or a redirect the policy does not follow, 504 an
upstream slower than 60 s. It stores nothing and never logs a header or a query string.
tests/fixtures/token-policy.json is the table of cases this proxy, client.py and the hosted handler
(web/edge/proxy.js) all pass. It also serves the app, onnxruntime-web from node_modules, and the decoder
graphs from the models directory.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .. import policy
from . import assets

log = logging.getLogger("sam2enc.web")

DEFAULT_UPSTREAM = "https://api.replicate.com/v1"
# Replicate's files API takes files under 100 MB ("Files must be less than 100MB in size"): the photo's
# multipart upload may be that large, plus its part headers. Bodies are held in memory while forwarded.
MAX_BODY = 100 * 1000 * 1000 + 64 * 1024
MAX_ANSWER = 64 * 1024 * 1024  # an upstream answer or output file: the embedding is 8 MiB
UPSTREAM_TIMEOUT = 60.0
CANCEL_AFTER = 600  # seconds; sent as Cancel-After on every prediction created through the proxy
PREDICTION_ID = re.compile(r"/api/predictions/([A-Za-z0-9_-]{1,64})")
CANCEL = re.compile(r"/api/predictions/([A-Za-z0-9_-]{1,64})/cancel")
MODEL = re.compile(r"/api/models/([A-Za-z0-9_.-]{1,100})/([A-Za-z0-9_.-]{1,100})")
PREFER_WAIT = re.compile(r"wait=([1-9]|[1-5][0-9]|60)")  # sync mode: Replicate holds the answer N s


class Proxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], upstream: str, models_dir: Path, cancel_after: int = CANCEL_AFTER
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.cancel_after = cancel_after
        self.models_dir = Path(models_dir)
        super().__init__(address, Handler)

    def file_host_allowed(self, url: str) -> bool:
        """The upstream's own origin (scheme, host and port), or Replicate's delivery hosts over https on
        the default port: ``policy.fetch_allowed`` (tests/fixtures/token-policy.json is the table all three
        implementations pass)."""
        return policy.fetch_allowed(url, self.upstream)

    def token_allowed(self, url: str) -> bool:
        """Where a download may carry the caller's token: a host it may fetch from, over https, or over
        plain http to a loopback upstream (a local stand-in): ``policy.token_allowed``."""
        return policy.token_allowed(url, self.upstream)

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """A browser's request from another site is refused before anything is forwarded: the page this
        proxy serves sends its own origin (or none, on a same-origin GET)."""
        return origin is None or origin == f"http://{host}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Every 3xx comes back as the answer (an HTTPError): API calls follow none (it would carry the token
    along) and downloads decide each hop themselves (``policy.download``)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _open(request: urllib.request.Request, timeout: float):
    """(status, headers, answer) for one request, errors and redirects included; the answer has
    ``read`` and ``close``. OSError when the upstream cannot be reached."""
    try:
        response = urllib.request.build_opener(_NoRedirects()).open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc
    return response.status, response.headers, response


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
        if self._foreign():
            return None
        if match := PREDICTION_ID.fullmatch(path):
            return self._forward("GET", f"{self.server.upstream}/predictions/{match.group(1)}")
        if match := MODEL.fullmatch(path):  # owner/name → latest_version.id, resolved by the page
            return self._forward("GET", f"{self.server.upstream}/models/{match.group(1)}/{match.group(2)}")
        if path == "/api/files":
            return self._file()
        if path == "/api/":  # the page's probe: answered here, reaching no upstream, carrying no token
            return self._send(200, json.dumps(PROBE).encode(), "application/json")
        if assets.for_server(self.server).serve(self, path):  # app, runtime, models, demo: with ETags
            return None
        return self._error(404, "not found")

    def do_POST(self) -> None:
        if self._foreign():
            return None
        if self.path == "/api/predictions":
            deadline = {"Cancel-After": f"{self.server.cancel_after}s"} if self.server.cancel_after else {}
            if wait := PREFER_WAIT.fullmatch(self.headers.get("Prefer", "").strip()):
                deadline["Prefer"] = wait.group(0)  # sync mode: the answer may come N s later
            return self._forward("POST", f"{self.server.upstream}/predictions", extra=deadline)
        if match := CANCEL.fullmatch(self.path):
            return self._forward("POST", f"{self.server.upstream}/predictions/{match.group(1)}/cancel")
        if self.path == "/api/files":  # the photo, uploaded as Replicate's clients do it
            if not self.headers.get("Content-Type", "").startswith("multipart/form-data;"):
                return self._refuse(415, "upload the photo as multipart/form-data")
            return self._forward("POST", f"{self.server.upstream}/files", self.headers["Content-Type"])
        return self._error(
            405 if self._known() else 404, "method not allowed" if self._known() else "not found"
        )

    def do_PUT(self) -> None:
        if self._foreign():
            return None
        self._error(405 if self._known() else 404, "method not allowed")

    do_DELETE = do_PATCH = do_PUT

    def _foreign(self) -> bool:
        """Refuse (403) an API call from another origin; True once refused."""
        if not self.path.startswith("/api/"):
            return False
        if self.server.origin_allowed(self.headers.get("Origin"), self.headers.get("Host")):
            return False
        self._refuse(403, "this proxy serves its own page only: the request came from another origin")
        return True

    def _known(self) -> bool:
        path = self.path.split("?", 1)[0]
        known = (PREDICTION_ID, CANCEL, MODEL)
        paths = ("/", "/api/", "/api/predictions", "/api/files")
        return path in paths or any(p.fullmatch(path) for p in known)

    # --- handlers ----------------------------------------------------------------------------------
    def _forward(
        self, method: str, url: str, kind: str = "application/json", extra: dict[str, str] | None = None
    ) -> None:
        body = None
        if method == "POST":
            body = self._body()
            if body is None:
                return None
        headers = {"Accept": "application/json", **(extra or {})}
        if body:  # the schema's GETs and cancel take no body, hence no Content-Type
            headers["Content-Type"] = kind
        if auth := self.headers.get("Authorization"):
            headers["Authorization"] = auth
        sync = PREFER_WAIT.fullmatch(headers.get("Prefer", ""))  # only ever set by do_POST's create
        timeout = UPSTREAM_TIMEOUT + (int(sync.group(1)) if sync else 0)
        request = urllib.request.Request(url, body, headers, method=method)
        self._relay(lambda: _open(request, timeout))

    def _file(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        url = (query.get("url") or [""])[0]
        if not self.server.file_host_allowed(url):
            return self._error(403, "only the upstream's output files can be fetched")

        def send(target: str, authorization: str | None):
            headers = {"Authorization": authorization} if authorization else {}
            return _open(urllib.request.Request(target, headers=headers), UPSTREAM_TIMEOUT)

        auth = self.headers.get("Authorization")
        self._relay(lambda: policy.download(url, self.server.upstream, auth, send))

    def _body(self) -> bytes | None:
        """The request body, or None once an error has been sent (and the connection marked to close)."""
        raw = self.headers.get("Content-Length")
        if "Transfer-Encoding" in self.headers or raw is None:
            return self._refuse(411, "send the body with a Content-Length")
        if not raw.isdigit():
            return self._refuse(400, "Content-Length is not a number of bytes")
        if int(raw) > MAX_BODY:
            return self._refuse(
                413, f"the request body is over this local proxy's {MAX_BODY // 1_000_000} MB limit"
            )
        return self.rfile.read(int(raw))

    def _refuse(self, status: int, message: str) -> None:
        self.close_connection = True  # the unread body must not be parsed as the next request
        self._error(status, message)

    def _relay(self, fetch) -> None:
        """Pass back the answer ``fetch()`` returns, ``(status, headers, answer)``: an API call's (a
        redirect is refused: the token would go along) or a download's (``policy.download``)."""
        try:
            status, headers, answer = fetch()
            with answer:
                payload = answer.read(MAX_ANSWER + 1)
        except policy.RedirectRefused as exc:
            return self._error(502, f"the upstream {exc}")
        except TimeoutError:
            return self._error(504, "the upstream did not answer in time", upstream=self.server.upstream)
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return self._error(504, "the upstream did not answer in time", upstream=self.server.upstream)
            return self._error(502, "the upstream could not be reached", upstream=self.server.upstream)
        if 300 <= status < 400:
            return self._error(502, "the upstream redirected an API call: the token follows no redirect")
        if len(payload) > MAX_ANSWER:
            return self._error(502, "the upstream's answer is too large")
        kind = headers.get("Content-Type") or "application/octet-stream"
        self._send(status, payload, kind, headers.get("Retry-After"))

    def _error(self, status: int, message: str, **extra: str) -> None:
        """The proxy's own refusal, told apart from the upstream's (passed through as it came) by source;
        ``upstream`` names the base URL it could not reach, so the page can say which."""
        problem = {"title": "refused by the local sam2enc proxy", "detail": message, "status": status}
        body = {**problem, **extra, "source": "proxy"}
        self._send(status, json.dumps(body).encode(), "application/problem+json")

    def _send(self, status: int, payload: bytes, kind: str, retry_after: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        if retry_after:  # Replicate's 429 (and some 5xx): how long to wait; the page's backoff reads it
            self.send_header("Retry-After", retry_after)
        if self.path.startswith("/api/"):
            self.send_header("Access-Control-Expose-Headers", "Retry-After")
        if self.close_connection:
            self.send_header("Connection", "close")
        # Cross-origin isolation lets onnxruntime-web use WASM threads (SharedArrayBuffer).
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


# What GET /api/ answers (both proxies): "a sam2enc proxy is here", for the page's same-origin probe.
PROBE = {"source": "proxy", "proxy": "sam2enc"}


def serve(host: str, port: int, upstream: str, models_dir: Path, cancel_after: int = CANCEL_AFTER) -> Proxy:
    return Proxy((host, port), upstream, models_dir, cancel_after)
