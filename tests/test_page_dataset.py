"""The page's dataset mode in Node's test runner (tests/js/page_dataset.test.mjs): pairing a folder's
photos with their bundles, Next/Previous and read-ahead, saved work coming back — DOM-free, fast tier."""

from __future__ import annotations

import pytest

from tests.node import node_test

pytestmark = pytest.mark.node


def test_dataset_pairing_and_saved_work_in_node() -> None:
    node_test("page_dataset.test.mjs")
