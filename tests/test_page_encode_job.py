"""An encode on Replicate as the page runs it, in Node's test runner (tests/js/page_encode_job.test.mjs):
the ticker, Cancel (the prediction canceled once), a replaced job's failure silent — DOM-free, so checked
in the fast tier."""

from __future__ import annotations

import pytest

from tests.node import node_test

pytestmark = pytest.mark.node


def test_encode_job_in_node() -> None:
    node_test("page_encode_job.test.mjs")
