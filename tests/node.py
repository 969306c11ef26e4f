"""Run one of tests/js/*.test.mjs in Node's test runner from pytest, so CI's pytest counts it.

Each JS test file has one pytest wrapper that prepares what it reads (fixtures written by the Python side,
passed through environment variables) and calls ``node_test``; nothing is skipped silently: a file whose
fixtures are missing skips itself in Node, and that counts as a failure here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JS_TESTS = ROOT / "tests" / "js"
ALLOWED = True  # tests/conftest.py turns it off for a test not marked @pytest.mark.node


def node_test(name: str, env: dict[str, str] | None = None, timeout: int = 120) -> int:
    """Run tests/js/``name`` (spec reporter); fail with Node's output unless every test passed.

    Returns how many tests Node ran, for wrappers that check the count against a table."""
    assert ALLOWED, "this test runs Node.js: mark it @pytest.mark.node (make test-fast runs without Node)"
    node = shutil.which("node")
    assert node, "node >= 20 is a test dependency (make install-web)"
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", str(JS_TESTS / name)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    output = f"{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    assert result.returncode == 0, f"node --test {name} failed:\n{output}"
    counts = {key: int(n) for key, n in re.findall(r"ℹ (tests|pass|fail|skipped) (\d+)", result.stdout)}
    assert counts.get("fail") == 0 and counts.get("skipped") == 0, f"node --test {name}:\n{output}"
    assert counts.get("tests", 0) > 0 and counts["pass"] == counts["tests"], f"node --test {name}:\n{output}"
    print(result.stdout)
    return counts["tests"]
