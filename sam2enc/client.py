"""Call the model remotely and get a verified bundle back, ready for ``Decoder``.

    from sam2enc.client import encode_remote
    token = os.environ["REPLICATE_API_TOKEN"]
    bundle = encode_remote("photo.jpg", "you/sam2enc", api_token=token)

``encode_remote`` speaks Replicate's HTTP API (the published OpenAPI schema; the tests validate every
request against it) with the standard library, as the official clients do: the photo is uploaded to
``/v1/files`` first (Replicate recommends data: URIs only below 1 MB, and echoes the input back in every
poll), ``owner/name`` of a user's own model is resolved to its latest version (only official models run
by name), the prediction is created with a ``Cancel-After`` deadline in sync mode (``Prefer: wait=N``:
Replicate holds the answer until the prediction is final or N seconds have passed, as the official
clients' ``run()`` asks) and, if the answer is not final, polled at its ``urls.get`` every 250 ms,
backing off after a few seconds; 429s are retried after ``Retry-After``. It is not built on
``replicate.Client``: replicate 1.0.7's pydantic ``Prediction`` rejects the ``aborted`` status, which
would reach the caller as a ValidationError.

``RemoteModel`` resolves the model once and encodes many photos from several threads (``sam2enc encode
--remote``, sam2enc/remote.py); a stopped encode cancels its prediction. ``bundle_from_outputs`` also
takes what ``replicate.run`` returns (a list of ``FileOutput``): it reads their ``.url`` under the rules
below, never ``FileOutput.read()``, which sends the token to whatever host the URL names.
``encode_cog`` posts to any Cog server (``cog serve``, ``make serve``). Output files are matched by
name, never by position: Cog lists uploaded files in the order their uploads finish.

The API token goes to the API's origin and, when an output download asks for it (401/403), to
``https://replicate.delivery`` and ``https://*.replicate.delivery`` only — never to another host, never
over plain http except to a loopback stand-in, never along a redirect; a download follows a redirect
only to a URL it could fetch directly (``sam2enc.policy``: the rules both token proxies follow too).
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import json
import logging
import math
import mimetypes
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from . import policy
from .bundle import BYTE_LENGTH, EMBEDDING_FILE, MANIFEST_FILE, Bundle, parse_bundle
from .errors import BundleError, ImageError, RemoteError

log = logging.getLogger(__name__)

API = "https://api.replicate.com"
TIMEOUT = 600.0  # a cold boot on Replicate takes minutes; the encoder itself a second or two
MAX_OUTPUT = 2 * BYTE_LENGTH  # never read more than this from an output URL
MAX_ANSWER = 16 * 1024 * 1024  # nor more than this from an API answer (a prediction carries its logs)
MAX_UPLOAD = 100 * 1000 * 1000  # Replicate's files API: "Files must be less than 100MB in size"
MIN_CANCEL_AFTER = 5  # seconds: the schema's minimum for Cancel-After
RETRIES = 5  # replicate-javascript's default maxRetries for 429 (and 5xx on GET)
TERMINAL = ("succeeded", "failed", "canceled", "aborted")
SYNC_WAIT = 60  # s: Prefer: wait=N on create, N from 1 to 60 (the official clients' run() asks for 60)
POLL_FIRST = 0.25  # s between GETs once a sync answer came back unfinished...
POLL_BACKOFF_AFTER = 3.0  # ...0.5 s after half that, then doubling every 3 s...
POLL_MAX = 2.0  # ...up to this (a cold boot on Replicate takes minutes)
USER_AGENT = "sam2enc"
VERSION_ID = re.compile(r"[A-Za-z0-9_.-]+")
MODEL_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


class _Refused(RemoteError):
    """The API answered an error; ``status`` lets callers give a better sentence for some of them."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def encode_remote(
    image: str | os.PathLike,
    model: str,
    api_token: str | None = None,
    base_url: str | None = None,
    timeout: float = TIMEOUT,
    wait: int = SYNC_WAIT,
) -> Bundle:
    """Encode a photo on Replicate (or a Replicate-compatible API) → verified bundle.

    ``model`` is ``owner/name`` (its latest version; official models run by name), ``owner/name:version``
    or a bare version id. ``api_token`` defaults to ``$REPLICATE_API_TOKEN``; ``base_url`` to
    ``$REPLICATE_BASE_URL`` or Replicate's API. ``timeout`` bounds the whole call and is sent as the
    prediction's ``Cancel-After`` (at least 5 s), so Replicate stops it too. ``wait`` is the sync window
    asked for with ``Prefer: wait`` (1 to 60 s; 0 polls from the start). Every failure is a
    ``RemoteError`` (or ``ImageError``/``BundleError``) with one sentence saying what happened.
    """
    return RemoteModel(model, api_token, base_url, timeout, wait).encode(image)


class RemoteModel:
    """One model on one API with one token: resolved once, then ``encode`` per photo, from any thread.

    ``timeout`` and ``wait`` apply to each ``encode`` call as in ``encode_remote``."""

    def __init__(
        self,
        model: str,
        api_token: str | None = None,
        base_url: str | None = None,
        timeout: float = TIMEOUT,
        wait: int = SYNC_WAIT,
    ) -> None:
        self.model = model
        self.token = api_token or os.environ.get("REPLICATE_API_TOKEN") or ""
        if not self.token:
            raise RemoteError("no API token: pass api_token= or set REPLICATE_API_TOKEN")
        self.base = (base_url or os.environ.get("REPLICATE_BASE_URL") or API).rstrip("/")
        self.timeout = timeout
        self.wait = max(0, min(SYNC_WAIT, int(wait)))
        self._target: tuple[str, dict[str, str]] | None = None
        self._lock = threading.Lock()

    def resolve(self) -> tuple[str, dict[str, str]]:
        """(create path, body fields) for the model, looked up once (``owner/name`` costs a GET)."""
        with self._lock:
            if self._target is None:
                self._target = _resolve(self._api(), self.model)
            return self._target

    def encode(
        self,
        image: str | os.PathLike,
        stop: threading.Event | None = None,
        on_created: Callable[[str], None] | None = None,
    ) -> Bundle:
        """Upload, predict, fetch, verify. ``on_created`` hears the prediction's id as soon as the
        create answer arrives; once ``stop`` is set the prediction is cancelled and a RemoteError raised."""
        api = self._api()
        with _open(image) as photo:
            size = os.fstat(photo.fileno()).st_size
            if size >= MAX_UPLOAD:
                raise RemoteError(
                    f"{image} is {size / 1e6:.0f} MB: Replicate's files API takes files under 100 MB"
                )
            create_path, target = self.resolve()
            upload = api.call("POST", "/files", *_multipart(photo))
        file_url = _get(upload, "urls", "get")
        if not isinstance(file_url, str):
            raise RemoteError(f"{api.base} answered the upload without the file's URL")
        headers = {"Cancel-After": f"{max(MIN_CANCEL_AFTER, math.ceil(self.timeout))}s"}
        # The sync window never outlasts the deadline: Replicate holds the answer up to N seconds.
        if (window := min(self.wait, int(api.deadline - time.monotonic()))) >= 1:
            headers["Prefer"] = f"wait={window}"
        body = json.dumps({**target, "input": {"image": file_url}}).encode()
        prediction = api.call("POST", create_path, body, headers=headers)
        if on_created is not None and isinstance(prediction.get("id"), str):
            on_created(prediction["id"])
        prediction = _wait(api, prediction, self.timeout, stop)
        return bundle_from_outputs(prediction.get("output"), token=self.token, api_origin=api.base)

    def cancel(self, prediction_id: str) -> None:
        """Ask Replicate to cancel a prediction (best effort: a failure is logged, not raised)."""
        try:
            self._api().call("POST", f"/predictions/{prediction_id}/cancel", retry=False)
        except RemoteError as exc:
            log.warning("could not cancel prediction %s: %s", prediction_id, exc)

    def _api(self) -> _Api:
        return _Api(self.token, self.base, time.monotonic() + self.timeout)


def encode_cog(image: str | os.PathLike, url: str, timeout: float = TIMEOUT) -> Bundle:
    """Encode a photo on a Cog server (``POST {url}/predictions``, no token) → verified bundle."""
    with _open(image) as photo:
        body = json.dumps({"input": {"image": _data_uri(photo)}}).encode()
    request = urllib.request.Request(
        f"{url.rstrip('/')}/predictions", body, {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            result = json.load(response)
    except urllib.error.HTTPError as exc:
        raise RemoteError(f"the Cog server at {url} answered {exc.code}: {exc.read()[:300]!r}") from None
    except OSError as exc:
        raise RemoteError(f"could not reach the Cog server at {url}: {exc}") from None
    if result.get("status") != "succeeded":
        raise RemoteError(f"prediction {result.get('status')}: {result.get('error')}")
    return bundle_from_outputs(result.get("output"))


def bundle_from_outputs(outputs: object, token: str | None = None, api_origin: str | None = None) -> Bundle:
    """Fetch the two output files (URLs or data: URIs), match them by name, verify the bundle.

    ``token`` is offered to an output host that asks for it (401/403) when that host is the API's
    origin (``api_origin``) or Replicate's delivery host; see ``token_allowed``. ``outputs`` may be what
    ``replicate.run`` returns: ``FileOutput`` objects are read by their ``.url`` under these rules, never
    with ``FileOutput.read()`` (the replicate client would send the token to whatever host it names)."""
    if isinstance(outputs, str):
        outputs = [outputs]
    if isinstance(outputs, tuple):
        outputs = list(outputs)
    if isinstance(outputs, list):
        outputs = [_output_url(o) for o in outputs]
    if not (isinstance(outputs, list) and all(isinstance(o, str) for o in outputs)):
        raise RemoteError(f"expected two output files, the model returned {outputs!r:.200}: not sam2enc?")
    names = [_name(o) for o in outputs]
    if len(outputs) == 1 and names[0] in (EMBEDDING_FILE, MANIFEST_FILE):
        missing = MANIFEST_FILE if names[0] == EMBEDDING_FILE else EMBEDDING_FILE
        raise RemoteError(
            f"the prediction succeeded but returned only {names[0]}: {missing} is missing because the "
            "model's upload of it failed (Cog uploads each output separately and only logs a failed "
            "upload); run it again"
        )
    if len(outputs) != 2:
        raise RemoteError(f"expected two output files, the model returned {outputs!r:.200}: not sam2enc?")
    files: dict[str, bytes] = {}
    for output, name in zip(outputs, names):
        payload = _fetch(output, token, api_origin)
        if name is None:  # inline outputs carry no name: tell them apart by content
            name = MANIFEST_FILE if payload.lstrip().startswith(b"{") else EMBEDDING_FILE
        files[name] = payload
    if set(files) != {EMBEDDING_FILE, MANIFEST_FILE}:
        raise RemoteError(
            f"expected {EMBEDDING_FILE} and {MANIFEST_FILE}, the model returned {sorted(files)}"
        )
    try:
        manifest = json.loads(files[MANIFEST_FILE])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BundleError("the returned manifest.json is not valid JSON") from None
    return parse_bundle(manifest, files[EMBEDDING_FILE], source="remote bundle")


def token_allowed(url: str, api_origin: str | None = None) -> bool:
    """May the API token be sent to ``url``? Only to the API's own origin (scheme, host, port) and to
    ``https://replicate.delivery`` / ``https://*.replicate.delivery`` on the default port; over plain
    http only to a loopback address (a local stand-in). The rule is ``sam2enc.policy``'s, shared with
    both proxies (tests/fixtures/token-policy.json)."""
    return policy.token_allowed(url, api_origin)


# --- the API --------------------------------------------------------------------------------------
class _Api:
    """Replicate's HTTP API with one token: JSON in and out, problem+json errors, 429s retried."""

    def __init__(self, token: str, base_url: str | None, deadline: float) -> None:
        self.base = (base_url or os.environ.get("REPLICATE_BASE_URL") or API).rstrip("/")
        self.token = token
        self.deadline = deadline

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        kind: str = "application/json",
        headers: dict[str, str] | None = None,
        retry: bool = True,
    ) -> dict:
        """The answer's JSON object; errors and unreachable hosts become one-sentence RemoteErrors."""
        url = f"{self.base}/v1{path}"
        sent = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if body is not None:
            sent["Content-Type"] = kind
        sent.update(headers or {})
        for attempt in range(RETRIES + 1):
            request = urllib.request.Request(url, body, sent, method=method)
            try:
                status, answer_headers, payload = _send(request, MAX_ANSWER)
            except OSError as exc:
                raise RemoteError(f"could not reach {self.base}: {_reason(exc)}") from None
            # As replicate-javascript (lib/util.js, withAutomaticRetries): 429 for any method, 5xx for GET.
            if retry and attempt < RETRIES and (status == 429 or (method == "GET" and status >= 500)):
                wait = _retry_after(answer_headers.get("Retry-After"), attempt)
                if time.monotonic() + wait < self.deadline:
                    time.sleep(wait)
                    continue
            break
        if len(payload) > MAX_ANSWER:
            raise RemoteError(f"{self.base}'s answer to {method} {path} is larger than {MAX_ANSWER} bytes")
        if 300 <= status < 400:
            raise _Refused(
                f"{self.base} answered {method} {path} with a redirect; the token does not follow one", status
            )
        if status >= 400:
            raise _Refused(_problem(status, payload, answer_headers.get("Retry-After")), status)
        try:
            answer = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            answer = None
        if not isinstance(answer, dict):
            raise RemoteError(
                f"{self.base} answered {method} {path} with something that is not a JSON object"
            )
        return answer


def _problem(status: int, payload: bytes, retry_after: str | None) -> str:
    """Replicate's errors are RFC 9457 problem documents: ``detail`` (or ``title``) says what happened."""
    try:
        problem = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        problem = None
    detail = "no detail"
    if isinstance(problem, dict):
        detail = str(problem.get("detail") or problem.get("title") or detail)
    if status == 401:
        return f"Replicate refused the API token (401: {detail})"
    if status == 429:
        return (
            f"Replicate is rate-limiting this token (429: {detail}); retry after {retry_after or 'a while'} s"
        )
    return f"Replicate refused the request ({status}: {detail})"


def _resolve(api: _Api, model: str) -> tuple[str, dict[str, str]]:
    """(create path, body fields) for ``owner/name:version``, a version id or ``owner/name``.

    Only official models run by name (``POST /v1/models/{owner}/{name}/predictions``); for a user's own
    model that endpoint answers 404 (replicate-javascript#347) or 422 (replicate-python#320), so
    ``owner/name`` is resolved with ``GET /v1/models/{owner}/{name}`` to its ``latest_version``."""
    ref = model.strip()
    name, _, version = ref.rpartition(":")
    if ":" in ref and (not MODEL_NAME.fullmatch(name) or not VERSION_ID.fullmatch(version)):
        raise RemoteError(f"{model!r} is not owner/name:version, a version id or owner/name")
    if ":" in ref:
        return "/predictions", {"version": version}
    if VERSION_ID.fullmatch(ref):
        return "/predictions", {"version": ref}
    if not MODEL_NAME.fullmatch(ref):
        raise RemoteError(f"{model!r} is not owner/name:version, a version id or owner/name")
    try:
        found = api.call("GET", f"/models/{ref}")
    except _Refused as exc:
        if exc.status in (403, 404):
            raise RemoteError(
                f"{api.base} has no model {ref} that this token can see ({exc.status}): check the name and "
                f"the token's account, or pass {ref}:<version id> from the model's Versions tab"
            ) from None
        raise
    if found.get("is_official") is True:
        return f"/models/{ref}/predictions", {}
    latest = _get(found, "latest_version", "id")
    if not isinstance(latest, str) or not VERSION_ID.fullmatch(latest):
        raise RemoteError(
            f"{ref} has no version to run yet: push one (cog push r8.im/{ref}) or pass {ref}:<version id>"
        )
    return "/predictions", {"version": latest}


def poll_interval(elapsed: float) -> float:
    """Seconds before the next GET, ``elapsed`` seconds after polling began: a prediction that outlived
    the sync window is usually about to end (250 ms, then 500 ms), one still queued or booting after a
    few seconds may take minutes (doubling every 3 s up to 2 s)."""
    if elapsed < POLL_BACKOFF_AFTER / 2:
        return POLL_FIRST
    return min(POLL_MAX, 2 * POLL_FIRST * 2 ** (max(0.0, elapsed - POLL_BACKOFF_AFTER) / 3))


def _wait(api: _Api, prediction: dict, timeout: float, stop: threading.Event | None = None) -> dict:
    """Poll until the prediction is final; every final status but ``succeeded`` is one RemoteError."""
    pid = prediction.get("id")
    if not isinstance(pid, str) or not VERSION_ID.fullmatch(pid):
        raise RemoteError(f"{api.base} answered the prediction request without a prediction id")
    poll = _poll_path(api, prediction, pid)
    polling_since = time.monotonic()
    while (status := prediction.get("status")) not in TERMINAL:
        if stop is not None and stop.is_set():
            with contextlib.suppress(RemoteError):
                api.call("POST", f"/predictions/{pid}/cancel", retry=False)
            raise RemoteError(f"prediction {pid} was canceled: interrupted")
        if time.monotonic() > api.deadline:
            with contextlib.suppress(RemoteError):  # best effort: the timeout is what the caller must hear
                api.call("POST", f"/predictions/{pid}/cancel", retry=False)
            raise RemoteError(f"prediction {pid} did not finish within {timeout:g} s and was canceled")
        pause = min(poll_interval(time.monotonic() - polling_since), api.deadline - time.monotonic())
        pause = max(0.0, pause)
        if stop is not None:
            stop.wait(pause)
        else:
            time.sleep(pause)
        if stop is not None and stop.is_set():
            continue
        prediction = api.call("GET", poll)
    if status == "succeeded":
        return prediction
    if status == "failed":
        raise RemoteError(f"prediction {pid} failed: {prediction.get('error') or 'the model gave no reason'}")
    if status == "aborted":
        raise RemoteError(
            f"prediction {pid} was aborted: its deadline ({timeout:g} s) passed before the model started "
            "(Replicate was still queueing or booting it); try again, or give a longer timeout="
        )
    raise RemoteError(
        f"prediction {pid} was canceled before it finished (from the web page or the API, or its "
        f"{timeout:g} s deadline passed while it ran)"
    )


def _poll_path(api: _Api, prediction: dict, pid: str) -> str:
    """The answer's ``urls.get`` as a path under the API (the token goes nowhere else), else the
    documented ``/predictions/{id}``."""
    url = _get(prediction, "urls", "get")
    prefix = f"{api.base}/v1/predictions/"
    if isinstance(url, str) and url.startswith(prefix) and VERSION_ID.fullmatch(url[len(prefix) :]):
        return url[len(api.base) + len("/v1") :]
    return f"/predictions/{pid}"


def _get(obj: object, *keys: str) -> object:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _multipart(photo) -> tuple[bytes, str]:
    """The photo as the official clients send it: one ``content`` part with its file name and type."""
    filename = re.sub(r"[^A-Za-z0-9._ -]", "_", Path(photo.name).name)[:255] or "photo"
    mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
        f"Content-Type: {mime}\r\n\r\n"
    )
    body = head.encode() + photo.read() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


# --- downloads and HTTP ---------------------------------------------------------------------------
def _open(image: str | os.PathLike):
    try:
        return Path(image).open("rb")
    except OSError as exc:
        raise ImageError(f"{image} cannot be read ({exc.strerror or exc})") from None


def _data_uri(photo) -> str:
    mime = mimetypes.guess_type(photo.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(photo.read()).decode()}"


def _output_url(output: object) -> object:
    """A ``replicate.helpers.FileOutput`` (or anything else carrying a string ``url``) → that URL."""
    url = getattr(output, "url", None)
    return url if not isinstance(output, str) and isinstance(url, str) else output


def _name(output: str) -> str | None:
    if output.startswith("data:"):
        return None
    return urllib.parse.unquote(output.split("?", 1)[0].rsplit("/", 1)[-1])


def _fetch(url: str, token: str | None = None, api_origin: str | None = None) -> bytes:
    """An output file, read up to ``MAX_OUTPUT``, under ``sam2enc.policy``'s rules: delivery links are
    usually pre-signed, so the first request carries no token; a 401/403 is retried once with it, only
    where ``token_allowed``; a redirect is followed without it, only to a URL the policy fetches."""
    if url.startswith("data:"):
        try:
            return base64.b64decode(url.split(",", 1)[1], validate=True)
        except (IndexError, ValueError):
            raise RemoteError("an output data: URI is not valid base64") from None
    if not url.startswith(("https://", "http://")):
        raise RemoteError(f"an output is not a URL: {url[:100]!r}")
    shown = url.split("?", 1)[0]

    def send(target: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(target, headers={"User-Agent": USER_AGENT})
        if authorization:
            request.add_header("Authorization", authorization)
        return _send(request, MAX_OUTPUT)

    try:
        status, _, payload = policy.download(url, api_origin, token and f"Bearer {token}", send)
    except policy.RedirectRefused as exc:
        raise RemoteError(f"could not download {shown}: it {exc}") from None
    except OSError as exc:
        raise RemoteError(f"could not download {shown}: {_reason(exc)}") from None
    if status in (401, 403) and not (token and token_allowed(url, api_origin)):
        raise RemoteError(
            f"{shown} answered {status}: it wants a token, and the API token is only sent to the API and "
            "to https://replicate.delivery"
        )
    if status != 200:
        raise RemoteError(f"could not download {shown}: it answered {status}")
    if len(payload) > MAX_OUTPUT:
        raise RemoteError(f"{shown} is larger than a bundle file can be")
    return payload


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx comes back as the answer: API calls follow none, downloads decide per hop


def _send(request: urllib.request.Request, cap: int) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, at most ``cap + 1`` bytes of body) for any status, a redirect's included: none is
    followed here (downloads follow them one checked hop at a time: ``policy.download``); OSError if
    unreachable."""
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=120) as response:
            return response.status, dict(response.headers), response.read(cap + 1)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers or {}), exc.read(cap + 1)


def _retry_after(value: str | None, attempt: int) -> float:
    """Seconds to wait: ``Retry-After`` (seconds or an HTTP date), else exponential backoff from 0.5 s."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    return 0.5 * 2**attempt


def _reason(exc: OSError) -> str:
    reason = getattr(exc, "reason", None) or exc.strerror or exc
    return str(reason) or type(exc).__name__
