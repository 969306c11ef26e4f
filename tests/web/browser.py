"""Headless chromium, driven through ``tests/web/driver.mjs`` (playwright-core) from Python."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "web" / "driver.mjs"


def find_chromium() -> str | None:
    """chromium on PATH (any install), else Debian's usual path."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if found := shutil.which(name):
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not find_chromium():
        return "needs chromium on PATH (make install-web: apt-get install chromium)"
    if not (ROOT / "node_modules" / "playwright-core").exists() or not shutil.which("node"):
        return "needs node and `npm ci` (make install-web) for playwright-core"
    return None


class BrowserError(AssertionError):
    pass


class Browser:
    """One chromium; ``call(js, **args)`` runs an async function body of (ctx, args) in the driver."""

    def __init__(self, webgpu: bool = False) -> None:
        self.process = subprocess.Popen(
            [shutil.which("node") or "node", str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.call("await ctx.launch(args)", executable=find_chromium(), webgpu=webgpu)

    def call(self, code: str, **args: Any) -> Any:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps({"code": code, "args": args}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise BrowserError(f"the browser driver exited ({self.process.poll()})")
        reply = json.loads(line)
        if not reply["ok"]:
            raise BrowserError(reply["error"] + "\nconsole: " + "\n".join(reply.get("console", [])))
        return reply["value"]

    def open(self, url: str, **options: Any) -> None:
        self.call("await ctx.open(args.url, args.options)", url=url, options=options)

    def state(self) -> dict:
        return self.call("return ctx.state()")

    def ready(self) -> dict:
        state = self.call("return ctx.ready()")
        assert state["ready"], state
        return state

    def encoded(self) -> dict:
        """After Encode: wait until the new bundle is live and ready (or the encode failed)."""
        state = self.call("return ctx.encoded()")
        assert state["ready"] and state["remote"].startswith("Encoded in"), state
        return state

    def settled(self) -> dict:
        return self.call("return ctx.settled()")

    def click(self, x: float, y: float, button: str = "left", shift: bool = False) -> dict:
        self.call("await ctx.click(args.x, args.y, args.o)", x=x, y=y, o={"button": button, "shift": shift})
        return self.settled()

    def key(self, key: str) -> dict:
        self.call("await ctx.page.keyboard.press(args.key)", key=key)
        return self.settled()

    def canvas_mask(self) -> np.ndarray:
        found = self.call("return ctx.canvasMask()")
        data = np.frombuffer(base64.b64decode(found["data"]), np.uint8)
        return data.reshape(found["height"], found["width"]).astype(bool)

    def download(self, selector: str, path: Path, count: int = 1) -> list[Path]:
        files = self.call("return ctx.download(args.s, args.p, args.n)", s=selector, p=str(path), n=count)
        return [Path(f) for f in files]

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.call("await ctx.page.screenshot({path: args.p})", p=str(path))

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin
            self.process.stdin.close()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def browser_marks(*marks: Any) -> list[Any]:
    """A browser test module's ``pytestmark``: its tiers (``marks``), plus, without chromium or Node, a
    skip here and a failure in CI (a missing browser there is a failure, never a silent skip)."""
    import pytest

    found = list(marks)
    if why := missing():
        if in_ci():
            pytest.fail(f"browser tests cannot run in CI: {why}", pytrace=False)
        found.append(pytest.mark.skip(reason=why))
    return found
