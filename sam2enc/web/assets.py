"""What the proxy serves besides the API: the app, onnxruntime-web, the decoder graphs and the demo.

Every file is served with a strong ``ETag`` (its sha256) and ``Cache-Control: no-cache``: the browser
keeps its copy and revalidates it, so a second visit costs a few 304s instead of ~30 MB. The demo photo
is encoded at startup with the very models this server serves (``demo_bundle``), so "Try the demo
photo" needs no token and no network; ``model.json`` tells the page when those models are random.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path

from ..modeldir import DECODER_FILE, DECODER_HIRES_FILE, MODEL_INFO_FILE, ModelInfo

log = logging.getLogger("sam2enc.web")

STATIC = Path(__file__).parent / "static"
ROOT = Path(__file__).resolve().parents[2]
ORT_DIST = ROOT / "node_modules" / "onnxruntime-web" / "dist"
DEMO_PHOTO = ROOT / "assets" / "astronaut.jpg"
RANDOM_MODELS = ROOT / ".cache" / "random-models"  # shared with `make demo`
MODEL_FILES = (DECODER_FILE, DECODER_HIRES_FILE, MODEL_INFO_FILE)
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm"}


@dataclass(frozen=True)
class Demo:
    photo: bytes
    photo_type: str
    embedding: bytes
    manifest: bytes
    random_weights: bool
    model: str


def demo_bundle(models_dir: Path, photo: Path = DEMO_PHOTO) -> Demo:
    """Encode the demo photo with ``models_dir``'s encoder (CPU, a few seconds for tiny)."""
    from ..encoder import Encoder
    from ..pipeline import encode

    info = ModelInfo.read(models_dir)
    bundle = encode(photo, Encoder(models_dir, device="cpu"))
    payload = bundle.to_bytes()
    manifest = json.dumps(bundle.manifest(payload), indent=2).encode()
    kind = mimetypes.guess_type(photo.name)[0] or "application/octet-stream"
    return Demo(photo.read_bytes(), kind, payload, manifest, info.random_weights, info.model)


def models_ready(models_dir: Path) -> str | None:
    """None when ``models_dir`` can serve the page, else one sentence saying why not."""
    missing = [name for name in (DECODER_FILE, MODEL_INFO_FILE) if not (Path(models_dir) / name).is_file()]
    if missing:
        return (
            f"{models_dir} has no {' or '.join(missing)}: export a model first (`make weights MODEL=tiny`), "
            "or pass --random-if-missing to serve a random-weight export"
        )
    return None


def random_models(cache: Path) -> Path:
    """The loudly labelled random-weight SAM2.1 tiny that `make demo` uses, exported once into ``cache``."""
    from ..testing import cached_random_export

    banner = "!" * 78
    log.warning(
        "\n%s\nNo exported model: serving a RANDOMLY INITIALISED SAM2.1 tiny.\n"
        "Every step runs, but the MASKS ARE MEANINGLESS. `make weights MODEL=tiny` for real ones.\n%s",
        banner,
        banner,
    )
    return cached_random_export(cache)


class Assets:
    """Static files with ETags, plus the demo; ``bytes_sent`` counts body bytes (tests, bench)."""

    def __init__(self, models_dir: Path, demo: Demo | None = None, demo_reason: str = "") -> None:
        self.models_dir = Path(models_dir)
        self.demo = demo
        self.demo_reason = demo_reason or "this server was started without a demo photo"
        self.bytes_sent = 0
        self._etags: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def routes(self, path: str) -> tuple[bytes | Path, str] | None:
        """What a GET of ``path`` answers with, or None when it is not a static path."""
        if path in ("/", "/index.html"):
            return STATIC / "index.html", "text/html; charset=utf-8"
        for prefix, root in (("/static/", STATIC), ("/vendor/ort/", ORT_DIST)):
            if path.startswith(prefix):
                return self._file(root, path[len(prefix) :])
        if path.startswith("/models/") and path[len("/models/") :] in MODEL_FILES:
            return self._file(self.models_dir, path[len("/models/") :])
        if path == "/demo/info.json":
            return json.dumps(self._demo_info()).encode(), "application/json"
        if self.demo and path.startswith("/demo/"):
            files = {
                "/demo/photo": (self.demo.photo, self.demo.photo_type),
                "/demo/embedding.bin": (self.demo.embedding, "application/octet-stream"),
                "/demo/manifest.json": (self.demo.manifest, "application/json"),
            }
            return files.get(path)
        return None

    def _demo_info(self) -> dict:
        if not self.demo:
            return {"available": False, "reason": f"No demo photo: {self.demo_reason}."}
        return {
            "available": True,
            "photo": "/demo/photo",
            "embedding": "/demo/embedding.bin",
            "manifest": "/demo/manifest.json",
            "model": self.demo.model,
            "randomWeights": self.demo.random_weights,
        }

    @staticmethod
    def _file(root: Path, relative: str) -> tuple[Path, str] | None:
        path = (root / relative).resolve()
        if root.resolve() not in path.parents or not path.is_file():
            return None
        kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return path, kind

    def etag(self, body: bytes | Path) -> tuple[bytes, str]:
        if isinstance(body, bytes):
            return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        stat = body.stat()
        key = (str(body), stat.st_mtime_ns, stat.st_size)
        data = body.read_bytes()
        with self._lock:
            tag = self._etags.get(key)
        if tag is None:
            tag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
            with self._lock:
                self._etags[key] = tag
        return data, tag

    def serve(self, handler, path: str) -> bool:
        """Answer a GET for ``path`` on ``handler`` (a BaseHTTPRequestHandler); False if not ours."""
        found = self.routes(path)
        if found is None:
            if path.startswith(("/static/", "/vendor/", "/models/", "/demo/")):
                handler._error(404, "not found")
                return True
            return False
        body, kind = found
        data, tag = self.etag(body)
        fresh = tag in [t.strip() for t in (handler.headers.get("If-None-Match") or "").split(",")]
        handler.send_response(304 if fresh else 200)
        handler.send_header("Content-Type", kind)
        handler.send_header("ETag", tag)
        handler.send_header("Cache-Control", "no-cache")  # keep it, but ask before each use
        handler.send_header("Content-Length", "0" if fresh else str(len(data)))
        # Cross-origin isolation lets onnxruntime-web use WASM threads (SharedArrayBuffer).
        handler.send_header("Cross-Origin-Opener-Policy", "same-origin")
        handler.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        handler.send_header("Cross-Origin-Resource-Policy", "same-origin")
        handler.end_headers()
        if not fresh and handler.command != "HEAD":
            handler.wfile.write(data)
            with self._lock:
                self.bytes_sent += len(data)
        return True


def for_server(server) -> Assets:
    """The server's Assets, created on first use (no demo) when ``install`` was not called."""
    assets = getattr(server, "assets", None)
    if assets is None:
        assets = server.assets = Assets(server.models_dir)
    return assets


def install(server, demo: Demo | None = None, demo_reason: str = "") -> Assets:
    server.assets = Assets(server.models_dir, demo, demo_reason)
    return server.assets


__all__ = ["Assets", "Demo", "demo_bundle", "for_server", "install", "models_ready"]
