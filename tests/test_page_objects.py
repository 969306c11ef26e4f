"""The page's objects in Node's test runner (tests/js/page_objects.test.mjs): New object, per-object
prompts with undo/redo, cycling, rename, delete, and decode results landing on their own object only —
DOM-free, so checked in the fast tier (about 0.3 s)."""

from __future__ import annotations

import pytest

from tests.node import node_test

pytestmark = pytest.mark.node


def test_objects_in_node() -> None:
    node_test("page_objects.test.mjs")
