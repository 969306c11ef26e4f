"""The page's objects in Node's test runner (tests/js/page_objects.test.mjs): New object, per-object
prompts with undo/redo, cycling, rename, delete, and decode results landing on their own object only —
DOM-free, so checked in the fast tier (about 0.3 s)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT / "tests" / "js" / "page_objects.test.mjs"


def test_objects_in_node() -> None:
    node = shutil.which("node")
    assert node, "node >= 20 is a test dependency (make install-web)"
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", str(TEST)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, f"node --test failed:\n{result.stdout}\n{result.stderr}"
    assert "ℹ pass 4" in result.stdout and "ℹ fail 0" in result.stdout, result.stdout
