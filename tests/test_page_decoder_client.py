"""The page's side of the decoder worker's protocol in Node's test runner
(tests/js/page_decoder_client.test.mjs): each message to its callback, export promises (a changed photo
rejects them), the union of several objects' masks — DOM-free, so checked in the fast tier."""

from __future__ import annotations

import pytest

from tests.node import node_test

pytestmark = pytest.mark.node


def test_decoder_client_in_node() -> None:
    node_test("page_decoder_client.test.mjs")
