"""The page's prompt logic in Node's test runner (tests/js/page_state.test.mjs): which marker a click
deletes, undo, clear, the prompt generation — DOM-free, so it is checked in the fast tier (about 0.3 s)."""

from __future__ import annotations

import pytest

from tests.node import node_test

pytestmark = pytest.mark.node


def test_prompt_list_in_node() -> None:
    node_test("page_state.test.mjs")
