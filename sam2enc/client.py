"""Call the model remotely and get a verified bundle back, ready for ``Decoder``.

    from sam2enc.client import encode_remote
    token = os.environ["REPLICATE_API_TOKEN"]
    bundle = encode_remote("photo.jpg", "you/sam2enc:<version id>", api_token=token)

``encode_remote`` goes through Replicate's HTTP API with the Replicate Python client; ``encode_cog``
posts to any Cog server (``cog serve``, ``make serve``). Output files are matched by name, never by
position: Cog lists uploaded files in the order their uploads finish.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import urllib.request
from pathlib import Path

from .bundle import EMBEDDING_FILE, MANIFEST_FILE, Bundle, parse_bundle
from .errors import BundleError, Sam2EncError

TIMEOUT = 300.0


class RemoteError(Sam2EncError):
    """The remote prediction failed, or what it returned is not a bundle."""


def data_uri(image: str | os.PathLike) -> str:
    path = Path(image)
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise Sam2EncError(f"{path} cannot be read ({exc.strerror or exc})") from None
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"


def encode_remote(
    image: str | os.PathLike,
    model: str,
    api_token: str | None = None,
    base_url: str | None = None,
) -> Bundle:
    """Send a photo to the model on Replicate (``owner/name:version`` or a version id) → verified bundle."""
    import replicate

    client = replicate.Client(api_token=api_token, base_url=base_url, timeout=TIMEOUT)
    version = model.split(":", 1)[1] if ":" in model else model
    try:
        prediction = client.predictions.create(version=version, input={"image": data_uri(image)})
        prediction.wait()
    except replicate.exceptions.ReplicateError as exc:
        raise RemoteError(f"Replicate refused the prediction: {exc}") from None
    except OSError as exc:
        raise RemoteError(f"could not reach Replicate: {exc}") from None
    if prediction.status != "succeeded":
        raise RemoteError(f"prediction {prediction.id} {prediction.status}: {prediction.error}")
    return bundle_from_outputs(prediction.output)


def encode_cog(image: str | os.PathLike, url: str) -> Bundle:
    """Send a photo to a Cog server's ``POST /predictions`` → verified bundle."""
    body = json.dumps({"input": {"image": data_uri(image)}}).encode()
    request = urllib.request.Request(
        f"{url.rstrip('/')}/predictions", body, {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            result = json.load(response)
    except OSError as exc:
        raise RemoteError(f"could not reach the Cog server at {url}: {exc}") from None
    if result.get("status") != "succeeded":
        raise RemoteError(f"prediction {result.get('status')}: {result.get('error')}")
    return bundle_from_outputs(result["output"])


def bundle_from_outputs(outputs: list) -> Bundle:
    """Fetch the two output files (URLs or data: URIs), match them by name, verify the bundle."""
    if not isinstance(outputs, list) or len(outputs) != 2:
        raise RemoteError(f"expected two output files, got {outputs!r:.200}")
    files: dict[str, bytes] = {}
    for output in map(str, outputs):
        payload = _fetch(output)
        if output.startswith("data:"):  # inline outputs carry no name: tell them apart by content
            name = MANIFEST_FILE if payload.lstrip().startswith(b"{") else EMBEDDING_FILE
        else:
            name = output.split("?", 1)[0].rsplit("/", 1)[-1]
        files[name] = payload
    if set(files) != {EMBEDDING_FILE, MANIFEST_FILE}:
        raise RemoteError(f"expected {EMBEDDING_FILE} and {MANIFEST_FILE}, got {sorted(files)}")
    try:
        manifest = json.loads(files[MANIFEST_FILE])
    except json.JSONDecodeError:
        raise BundleError("the returned manifest.json is not valid JSON") from None
    return parse_bundle(manifest, files[EMBEDDING_FILE], source="remote bundle")


def _fetch(url: str) -> bytes:
    """Output URLs are pre-signed delivery links: the API token is never sent to them."""
    if url.startswith("data:"):
        return base64.b64decode(url.split(",", 1)[1])
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
            return r.read()
    except OSError as exc:
        raise RemoteError(f"could not download {url.split('?', 1)[0]}: {exc}") from None
