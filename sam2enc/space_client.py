"""Encode on a Gradio Space (``python -m sam2enc.space``, on Hugging Face or anywhere) with gradio_client.

    from sam2enc.space_client import encode_space
    bundle = encode_space("photo.jpg", "you/sam2enc")      # or the Space's URL; verified, ready for Decoder

``sam2enc encode --space URL|owner/space IMAGES... --out DIR`` runs ``Space`` as a ``Backend`` of the
batch that ``encode --remote`` uses (sam2enc/remote.py): the same folder rules, progress, resume and
signal handling. Each worker thread has a gradio_client ``Client`` of its own, downloading into a folder
of its own (gradio_client names downloads by content, so two workers could otherwise remove each other's
files); what it downloads is read, verified and deleted at once. The bundle is written as the Space sent
it, byte for byte, once it verifies (size, sha256, version) and names the photo's bytes
(``source.sha256``). A rerun skips a bundle of the same photo whose model is the one the Space publishes
(``sam2enc.space.MODEL_ELEMENT``); Ctrl+C and SIGTERM cancel every request in flight (a request that is
still queued on the Space is removed from its queue; one being encoded finishes there, unread).

The token: ``$HF_TOKEN`` (or ``token=``) is sent only where a private Space needs it, to a Space named
``owner/space`` or an ``https`` URL on ``huggingface.co`` or ``*.hf.space``; never printed. Left to
itself, gradio_client would send the token huggingface_hub finds (``$HF_TOKEN``, the saved login) to
any URL it is given, plain http included, so every other URL gets ``token=False``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from .bundle import (
    EMBEDDING_FILE,
    FILES,
    MANIFEST_FILE,
    Bundle,
    parse_bundle,
    photo_sha256,
    write_files,
)
from .errors import BundleError, ImageError, RemoteError
from .extras import MissingDependency
from .modeldir import same_model

log = logging.getLogger(__name__)

TOKEN_ENV = "HF_TOKEN"
TIMEOUT = 600.0  # s per photo: a sleeping Space on Hugging Face takes minutes to wake up
CONNECT_TIMEOUT = 60.0  # s for each HTTP call gradio_client makes (the prediction streams)
API_NAME = "/predict"  # the Space's one endpoint (sam2enc/space.py serves it)
MODEL_ELEMENT = "sam2enc-model"  # elem_id of the Space's component whose value is the manifest's model
SPACE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
SPACE_PAGE = re.compile(r"https://huggingface\.co/spaces/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)/?")
INSTALL = "pip install '.[space]' from the sam2enc checkout (or pip install gradio_client==2.7.2)"


def encode_on_space(
    images: list[Path],
    space: str,
    out: Path,
    concurrency: int = 4,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """``sam2enc encode --space``: ``images`` into ``out/<stem>/`` each, ``concurrency`` requests in flight
    (``remote.encode_batch``); the exit status (0, 1, 130 or 143). A Space that cannot be reached, or is
    not sam2enc's, is one ``Sam2EncError`` before any photo is sent."""
    from .remote import check_concurrency, encode_batch

    check_concurrency(concurrency)
    backend = Space(space)
    try:
        return encode_batch(images, out, backend, concurrency, stdout, stderr)
    finally:
        backend.close()


def encode_space(
    image: str | os.PathLike, space: str, token: str | None = None, timeout: float = TIMEOUT
) -> Bundle:
    """Encode one photo on a Space (``owner/space`` or its URL) → verified bundle. ``token`` defaults to
    ``$HF_TOKEN``; every failure is a ``RemoteError`` (or ``ImageError``/``BundleError``) sentence."""
    remote = Space(space, token, timeout)
    try:
        return remote.encode(Path(image))[0]
    finally:
        remote.close()


def bundle_from_space(result: object, source: str = "the Space's bundle") -> Bundle:
    """What gradio_client's ``predict(..., api_name="/predict")`` returned (two local paths, or FileData
    dicts with a local ``path``) → the verified bundle."""
    return parse_files(read_result(result), source)[0]


def space_ref(space: str) -> str:
    """``owner/space``, its ``https://huggingface.co/spaces/owner/space`` page, or the app's URL."""
    space = space.strip()
    if page := SPACE_PAGE.fullmatch(space):
        return page.group(1)
    if SPACE_ID.fullmatch(space) or urllib.parse.urlsplit(space).scheme in ("http", "https"):
        return space
    raise RemoteError(f"{space!r} is not a Space: give owner/space or the app's http(s) URL")


def token_goes_to(space: str) -> bool:
    """May a Hugging Face token be sent to ``space``? A Space by name (gradio_client asks huggingface.co
    where it runs), or an https URL on huggingface.co or a *.hf.space host on the default port."""
    if SPACE_ID.fullmatch(space):
        return True
    url = urllib.parse.urlsplit(space)
    host = (url.hostname or "").lower()
    hf = host == "huggingface.co" or (host.endswith(".hf.space") and len(host) > len(".hf.space"))
    return url.scheme == "https" and url.port in (None, 443) and hf


class Space:
    """One Space, one token: ``encode`` per photo from any thread; the ``Backend`` of ``encode --space``."""

    def __init__(self, space: str, token: str | None = None, timeout: float = TIMEOUT) -> None:
        self.space = space_ref(space)
        self.secret = (token or os.environ.get(TOKEN_ENV) or "").strip()
        self.timeout = timeout
        self._connected: dict | RemoteError | None = None  # the model it publishes ({} for none), or why not
        self._root = Path(tempfile.mkdtemp(prefix="sam2enc-space-"))
        self._local = threading.local()
        self._clients: list = []
        self._jobs: dict[str, object] = {}
        self._lock = threading.Lock()
        self._connecting = threading.Lock()

    # --- Backend --------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Connect: a Space that cannot be reached, or has no /predict, is one error before any upload."""
        self._connect()

    def other_model(self, bundle: Bundle) -> str | None:
        """Asks the Space (once) which model it serves; one that cannot be reached cannot tell: None."""
        try:
            model = self._connect()
        except RemoteError as exc:
            log.info("cannot tell which model %s serves: %s", self.space, exc)
            return None
        if model and bundle.model and not same_model(bundle.model, model):
            sha = bundle.model.get("checkpointSha256") or "none recorded"
            return f"{bundle.model.get('name')} (checkpoint sha256 {sha[:12]}), not the Space's model"
        return None

    def _connect(self) -> dict | None:
        """The model the Space publishes (None for another app), learnt once; or its RemoteError again."""
        with self._connecting:
            if self._connected is None:
                try:
                    client = self._client()
                    api = client.view_api(print_info=False, return_format="dict")
                    if API_NAME not in api.get("named_endpoints", {}):
                        raise RemoteError(
                            f"the Space {self.space} has no {API_NAME} endpoint: is it sam2enc's?"
                        )
                    self._connected = published_model(client.config) or {}
                except RemoteError as exc:
                    self._connected = exc
            if isinstance(self._connected, RemoteError):
                raise self._connected
            return self._connected or None

    def encode_into(self, job, stop: threading.Event, created: Callable[[str], None]) -> None:
        _, files = self.encode(job.image, stop, created)
        write_files(files, job.out_dir)

    def cancel(self, handle: str) -> None:
        with self._lock:
            pending = self._jobs.get(handle)
        if pending is not None:
            pending.cancel()

    # --- one photo ------------------------------------------------------------------------------------

    def encode(
        self,
        image: Path,
        stop: threading.Event | None = None,
        on_created: Callable[[str], None] | None = None,
    ) -> tuple[Bundle, dict[str, bytes]]:
        """Send one photo, wait for its bundle, verify it: (bundle, {file name: bytes as sent})."""
        from gradio_client import handle_file

        try:
            digest = photo_sha256(image.read_bytes())
        except OSError as exc:
            raise ImageError(f"{image} cannot be read ({exc.strerror or exc})") from None
        client = self._client()
        try:
            pending = client.submit(handle_file(str(image)), api_name=API_NAME)
        except Exception as exc:  # no such endpoint: not sam2enc's Space
            raise RemoteError(f"{self.space} cannot encode: {_reason(exc)}") from None
        handle = uuid.uuid4().hex
        with self._lock:
            self._jobs[handle] = pending
        if on_created is not None:
            on_created(handle)
        log.debug("%s: sent to %s", image, self.space)  # after on_created: a signal now cancels it
        try:
            result = self._wait(pending, stop)
        finally:
            with self._lock:
                self._jobs.pop(handle, None)
        try:
            files = read_result(result)
        finally:
            _remove_downloads(result)
        bundle, files = parse_files(files, f"the bundle of {image} from {self.space}")
        if bundle.source_sha256 not in (None, digest):
            raise RemoteError(f"the Space returned a bundle of other bytes than {image} (sha256 differs)")
        return bundle, files

    def close(self) -> None:
        for client in self._clients:
            client.close()
        shutil.rmtree(self._root, ignore_errors=True)

    def _wait(self, pending, stop: threading.Event | None) -> object:
        from gradio_client.exceptions import AppError

        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return pending.result(timeout=0.1)
            except concurrent.futures.TimeoutError:
                if stop is not None and stop.is_set():
                    pending.cancel()
                    raise RemoteError("canceled") from None
                if time.monotonic() > deadline:
                    pending.cancel()
                    raise RemoteError(f"{self.space} sent no bundle within {self.timeout:.0f} s") from None
            except AppError as exc:  # the Space's own sentence: what was wrong with the photo
                raise RemoteError(" ".join(str(exc).split()) or "the Space refused the photo") from None
            except concurrent.futures.CancelledError:
                raise RemoteError("canceled") from None
            except Exception as exc:
                raise RemoteError(f"{self.space} failed: {_reason(exc)}") from None

    def _client(self):
        """This thread's gradio_client ``Client``, connected once, downloading into a folder of its own."""
        client = getattr(self._local, "client", None)
        if client is not None:
            return client
        try:
            from gradio_client import Client
        except ModuleNotFoundError:
            raise MissingDependency(
                f"--space needs gradio_client, which is not installed: {INSTALL}"
            ) from None
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # its telemetry ignores the argument
        token = (self.secret or None) if token_goes_to(self.space) else False
        downloads = Path(tempfile.mkdtemp(prefix="worker-", dir=self._root))
        try:
            client = Client(
                self.space,
                token=token,
                verbose=False,
                download_files=str(downloads),
                analytics_enabled=False,
                httpx_kwargs={"timeout": CONNECT_TIMEOUT},
            )
        except Exception as exc:
            hint = "" if self.secret else f" (a private Space needs ${TOKEN_ENV})"
            raise RemoteError(f"could not open the Space {self.space}: {_reason(exc)}{hint}") from None
        with self._lock:
            self._clients.append(client)
        self._local.client = client
        return client


def published_model(config: dict) -> dict | None:
    """The manifest ``model`` a sam2enc Space publishes in its config; None for any other app."""
    for component in config.get("components", []):
        props = component.get("props", {}) if isinstance(component, dict) else {}
        if props.get("elem_id") == MODEL_ELEMENT:
            value = props.get("value")
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    return None
            return value if isinstance(value, dict) else None
    return None


def read_result(result: object) -> dict[str, bytes]:
    """gradio_client's two downloaded files (paths or FileData dicts) → {file name: bytes}, by name (by
    content where a name is not a bundle's)."""
    paths = _paths(result)
    if len(paths) != 2:
        raise RemoteError(f"expected two files from the Space, it returned {result!r:.200}: not sam2enc?")
    files: dict[str, bytes] = {}
    for path in paths:
        payload = Path(path).read_bytes()
        name = Path(path).name
        if name not in FILES:
            name = MANIFEST_FILE if payload.lstrip().startswith(b"{") else EMBEDDING_FILE
        files[name] = payload
    if set(files) != FILES:
        raise RemoteError(
            f"expected {EMBEDDING_FILE} and {MANIFEST_FILE}, the Space returned {sorted(files)}"
        )
    return files


def parse_files(files: dict[str, bytes], source: str) -> tuple[Bundle, dict[str, bytes]]:
    """Verify the two files as a bundle: (the bundle, the files unchanged)."""
    try:
        manifest = json.loads(files[MANIFEST_FILE])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BundleError(f"{source}: manifest.json is not valid JSON") from None
    return parse_bundle(manifest, files[EMBEDDING_FILE], source=source), files


def _paths(result: object) -> list[str]:
    items = list(result) if isinstance(result, list | tuple) else [result]
    paths = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("path")
        if not isinstance(item, str | os.PathLike):
            raise RemoteError(f"expected two files from the Space, it returned {result!r:.200}: not sam2enc?")
        paths.append(os.fspath(item))
    return paths


def _remove_downloads(result: object) -> None:
    """Delete what gradio_client downloaded (and the folder it named by content), once read."""
    try:
        paths = _paths(result)
    except RemoteError:
        return
    for path in map(Path, paths):
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
