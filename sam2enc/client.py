"""Call the model remotely and get a verified bundle back, ready for ``Decoder``.

    from sam2enc.client import encode_remote
    token = os.environ["REPLICATE_API_TOKEN"]
    bundle = encode_remote("photo.jpg", "you/sam2enc:<version id>", api_token=token)

``encode_remote`` goes through Replicate's HTTP API with the Replicate Python client, which uploads
the photo to ``/v1/files`` first (Replicate recommends data: URIs only below 1 MB, and echoes the input
back in every poll). ``encode_cog`` posts to any Cog server (``cog serve``, ``make serve``). Output
files are matched by name, never by position: Cog lists uploaded files in the order their uploads
finish. The API token goes to the API only, never to the hosts that serve the output files.
"""

from __future__ import annotations

import base64
import contextlib
import json
import mimetypes
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from .bundle import BYTE_LENGTH, EMBEDDING_FILE, MANIFEST_FILE, Bundle, parse_bundle
from .errors import BundleError, ImageError, RemoteError

TIMEOUT = 600.0  # a cold boot on Replicate takes minutes; the encoder itself a second or two
MAX_OUTPUT = 2 * BYTE_LENGTH  # never read more than this from an output URL
TERMINAL = ("succeeded", "failed", "canceled")
VERSION_ID = re.compile(r"[A-Za-z0-9_.-]+")


def encode_remote(
    image: str | os.PathLike,
    model: str,
    api_token: str | None = None,
    base_url: str | None = None,
    timeout: float = TIMEOUT,
) -> Bundle:
    """Encode a photo on Replicate (or a Replicate-compatible API) → verified bundle.

    ``model`` is ``owner/name:version``, a bare version id, or ``owner/name`` (Replicate's endpoint for
    official models, which runs their latest version). ``api_token`` defaults to
    ``$REPLICATE_API_TOKEN``; ``base_url`` to Replicate's API.
    """
    import httpx
    import replicate
    from replicate.exceptions import ReplicateError

    client = replicate.Client(
        api_token=api_token, base_url=base_url, timeout=httpx.Timeout(60.0, connect=10.0)
    )
    where = base_url or os.environ.get("REPLICATE_BASE_URL") or "https://api.replicate.com"
    target = _target(model)
    deadline = time.monotonic() + timeout
    try:
        with _open(image) as photo:
            prediction = client.predictions.create(**target, input={"image": photo})
        while prediction.status not in TERMINAL:
            if time.monotonic() > deadline:
                _cancel(prediction)
                raise RemoteError(f"prediction {prediction.id} did not finish within {timeout:g} s")
            time.sleep(client.poll_interval)
            prediction.reload()
    except ReplicateError as exc:
        raise RemoteError(_api_message(exc)) from None
    except httpx.HTTPError as exc:
        raise RemoteError(f"could not reach {where}: {exc or type(exc).__name__}") from None
    if prediction.status != "succeeded":
        raise RemoteError(f"prediction {prediction.id} {prediction.status}: {prediction.error}")
    return bundle_from_outputs(prediction.output)


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


def bundle_from_outputs(outputs: object) -> Bundle:
    """Fetch the two output files (URLs or data: URIs), match them by name, verify the bundle."""
    if not (isinstance(outputs, list) and len(outputs) == 2 and all(isinstance(o, str) for o in outputs)):
        raise RemoteError(f"expected two output files, the model returned {outputs!r:.200}: not sam2enc?")
    files: dict[str, bytes] = {}
    for output in outputs:
        payload = _fetch(output)
        if output.startswith("data:"):  # inline outputs carry no name: tell them apart by content
            name = MANIFEST_FILE if payload.lstrip().startswith(b"{") else EMBEDDING_FILE
        else:
            name = output.split("?", 1)[0].rsplit("/", 1)[-1]
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


def _target(model: str) -> dict[str, str]:
    """``owner/name:version`` and bare ids name a version; ``owner/name`` names a model."""
    ref = model.strip()
    if ":" in ref:
        ref = ref.split(":", 1)[1]
    elif "/" in ref:
        return {"model": ref}
    if not VERSION_ID.fullmatch(ref):
        raise RemoteError(f"{model!r} is not owner/name:version, a version id or owner/name")
    return {"version": ref}


def _open(image: str | os.PathLike):
    try:
        return Path(image).open("rb")
    except OSError as exc:
        raise ImageError(f"{image} cannot be read ({exc.strerror or exc})") from None


def _data_uri(photo) -> str:
    mime = mimetypes.guess_type(photo.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(photo.read()).decode()}"


def _api_message(exc) -> str:
    detail = exc.detail or exc.title or "no detail"
    if exc.status == 401:
        return f"Replicate refused the API token (401: {detail})"
    return f"Replicate refused the request ({exc.status}: {detail})"


def _cancel(prediction) -> None:
    with contextlib.suppress(Exception):  # best effort: the timeout is what the caller needs to hear
        prediction.cancel()


def _fetch(url: str) -> bytes:
    """Output URLs are pre-signed delivery links: no token is sent to them, and reads are bounded."""
    if url.startswith("data:"):
        try:
            return base64.b64decode(url.split(",", 1)[1], validate=True)
        except (IndexError, ValueError):
            raise RemoteError("an output data: URI is not valid base64") from None
    if not url.startswith(("https://", "http://")):
        raise RemoteError(f"an output is not a URL: {url[:100]!r}")
    shown = url.split("?", 1)[0]
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            payload = response.read(MAX_OUTPUT + 1)
    except OSError as exc:
        raise RemoteError(f"could not download {shown}: {exc}") from None
    if len(payload) > MAX_OUTPUT:
        raise RemoteError(f"{shown} is larger than a bundle file can be")
    return payload
