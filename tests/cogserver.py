"""Start Cog's own HTTP server (coglet) on 127.0.0.1, in any venv, and wait for its setup to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(
    models_dir: Path,
    *extra: str,
    stub: str = "predict.py:Predictor",
    cwd: Path = ROOT,
    python: Path | str = sys.executable,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> tuple[subprocess.Popen, str]:
    """Start the server; ``python`` picks the venv (its bin/ goes first on PATH for coglet's worker)."""
    port = free_port()
    full_env = {
        **os.environ,
        "PATH": f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}",
        "COG_PREDICT_TYPE_STUB": stub,
        "PORT": str(port),
        "SAM2ENC_MODELS_DIR": str(models_dir),
        **(env or {}),
    }
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [str(python), "-m", "cog.server.http", "--host", "127.0.0.1", *extra],
        cwd=cwd,
        env=full_env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}"


def wait_for_setup(proc: subprocess.Popen, url: str, timeout: float = 120) -> dict:
    """Poll /health-check until setup has ended (READY or SETUP_FAILED); return the last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return {"status": "EXITED", "returncode": proc.returncode}
        try:
            with urllib.request.urlopen(f"{url}/health-check", timeout=2) as response:
                health = json.load(response)
            if health["status"] in ("READY", "SETUP_FAILED"):
                return health
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("cog server did not finish its setup")


def start_server(models_dir: Path, *extra: str, **kwargs) -> tuple[subprocess.Popen, str]:
    """A server whose setup succeeded."""
    proc, url = launch(models_dir, *extra, **kwargs)
    health = wait_for_setup(proc, url)
    if health["status"] != "READY":
        proc.kill()
        raise AssertionError(f"cog server setup failed: {health}")
    return proc, url
