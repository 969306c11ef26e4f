"""The page's decode queue in Node's test runner (tests/js/page_decode_queue.test.mjs): one request in
flight, the newest per object, the selected object first, stale answers dropped and counted — DOM-free,
so checked in the fast tier."""

from __future__ import annotations

import pytest

from tests.node import node_test

pytestmark = pytest.mark.node


def test_decode_queue_in_node() -> None:
    node_test("page_decode_queue.test.mjs")
