"""The vendored schema, the checker built on it, and the stand-in behaving as Replicate's API does."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request

import pytest
from jsonschema import Draft202012Validator

from tests import replicate_contract as contract
from tests.replicate_standin import VERSION, ReplicateStandIn, checked_api_fixture, standin_fixture

pytestmark = pytest.mark.server

TOKEN = "r8_contract_token"


def test_the_vendored_schema_is_the_documented_download():
    assert hashlib.sha256(contract.SCHEMA_FILE.read_bytes()).hexdigest() == contract.SCHEMA_SHA256
    assert contract.SCHEMA_FILE.stat().st_size == 92_838


def test_the_schema_loads_without_the_nonstandard_query_method():
    raw = json.loads(contract.SCHEMA_FILE.read_text())
    assert "query" in raw["paths"]["/models"], "the download declares it; the loader must drop it"
    assert "query" not in contract.document()["paths"]["/models"]
    for schema in contract.document()["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # raises SchemaError naming the bad part


PREDICTION = {
    "id": "p",
    "model": "me/sam2enc",
    "version": VERSION,
    "input": {"image": "https://api.replicate.com/v1/files/f"},
    "output": None,
    "data_removed": False,
    "error": None,
    "status": "aborted",
    "created_at": "2026-11-25T00:00:00Z",
    "urls": {
        "web": "https://replicate.com/p/p",
        "get": "https://a/v1/predictions/p",
        "cancel": "https://a/c",
    },
}


def answer(body: object, status: int = 200, kind: str = "application/json") -> list[str]:
    return contract.check_response("GET", "/v1/predictions/p", status, kind, json.dumps(body).encode())


def test_the_checker_accepts_what_the_api_sends_and_names_what_it_does_not():
    assert answer(PREDICTION) == []
    assert answer({**PREDICTION, "version": "hidden"}) == [], "official models"
    assert any(
        "'data_removed' is a required" in m
        for m in answer({k: v for k, v in PREDICTION.items() if k != "data_removed"})
    )
    assert any(
        "'web' is a required" in m for m in answer({**PREDICTION, "urls": {"get": "x", "cancel": "y"}})
    )
    assert any("is not one of" in m for m in answer({**PREDICTION, "status": "done"}))
    assert answer({"detail": "no", "status": 401}, 401, "application/problem+json") == []
    assert answer({"detail": "no"}, 401, "application/json") != [], "errors are problem+json"
    assert answer(PREDICTION, 201) != [], "predictions.get answers 200 only"


def request(method: str, path: str, body: object = None, **headers: str) -> list[str]:
    data = None if body is None else json.dumps(body).encode()
    sent = {
        "Authorization": f"Bearer {TOKEN}",
        **({"Content-Type": "application/json"} if data else {}),
        **headers,
    }
    return contract.check_request(method, path, {k.replace("_", "-"): v for k, v in sent.items()}, data)


def test_the_checker_names_requests_that_do_not_fit():
    assert request("POST", "/v1/predictions", {"version": VERSION, "input": {}}, Cancel_After="5m") == []
    assert request("POST", "/v1/models/a/b/predictions", {"input": {}}) == []
    assert request("GET", "/v1/models/a/b") == [] and request("POST", "/v1/predictions/p/cancel") == []
    assert any("'version' is a required" in m for m in request("POST", "/v1/predictions", {"input": {}}))
    assert any(
        "'model' was unexpected" in m
        for m in request("POST", "/v1/predictions", {"model": "a/b", "version": "v", "input": {}})
    )
    assert any(
        "does not match" in m
        for m in request("POST", "/v1/predictions", {"version": "v", "input": {}}, Prefer="now")
    )
    assert request("DELETE", "/v1/predictions/p") == [
        "DELETE /v1/predictions/p: not an operation of Replicate's API"
    ]
    no_token = contract.check_request("GET", "/v1/models/a/b", {}, None)
    assert no_token == ["GET /v1/models/a/b: no `Authorization: Bearer <token>` (bearerAuth)"]


standin = standin_fixture(TOKEN)


api = checked_api_fixture()


def send(api: ReplicateStandIn, method: str, path: str, body: object = None, **headers: str):
    data = None if body is None else json.dumps(body).encode()
    sent = {"Authorization": f"Bearer {TOKEN}", **({"Content-Type": "application/json"} if data else {})}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    req = urllib.request.Request(api.url + path, data, sent, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def wait(api: ReplicateStandIn, pid: str) -> dict:
    for _ in range(500):
        prediction = send(api, "GET", f"/v1/predictions/{pid}")[2]
        if prediction["status"] in ("succeeded", "failed", "canceled", "aborted"):
            return prediction
        time.sleep(0.02)
    raise AssertionError("never finished")


IMAGE = {"image": "data:image/png;base64,"}


def test_only_official_models_run_by_name(api):
    """replicate-javascript#347 (404) and replicate-python#320 (422, by version field)."""
    status, headers, problem = send(api, "POST", "/v1/models/me/sam2enc/predictions", {"input": IMAGE})
    assert (status, headers["Content-Type"], problem["status"]) == (404, "application/problem+json", 404)
    status, _, problem = send(api, "POST", "/v1/predictions", {"version": "me/sam2enc", "input": IMAGE})
    assert status == 422 and "specified version does not exist" in problem["detail"]
    status, _, model = send(api, "GET", "/v1/models/me/sam2enc")
    assert status == 200 and model["latest_version"]["id"] == VERSION and model["is_official"] is False


def test_a_missing_input_and_a_short_deadline_are_422(api):
    assert send(api, "POST", "/v1/predictions", {"version": VERSION, "input": {}})[0] == 422
    short = send(api, "POST", "/v1/predictions", {"version": VERSION, "input": IMAGE}, Cancel_After="4s")
    assert short[0] == 422 and "at least 5s" in short[2]["detail"]


def test_cancel_after_aborts_a_queued_prediction_and_cancel_cancels(api):
    api.delay, api.deadline_scale = 2.0, 0.01
    status, _, created = send(
        api, "POST", "/v1/predictions", {"version": VERSION, "input": IMAGE}, Cancel_After="5s"
    )
    assert status == 201 and created["status"] == "starting" and "started_at" not in created
    done = wait(api, created["id"])
    assert done["status"] == "aborted" and done["completed_at"] and "started_at" not in done
    api.deadline_scale = 1.0
    created = send(api, "POST", "/v1/predictions", {"version": VERSION, "input": IMAGE})[2]
    status, _, canceled = send(api, "POST", f"/v1/predictions/{created['id']}/cancel")
    assert (status, canceled["status"]) == (200, "canceled")


def test_429_carries_retry_after_and_outputs_can_need_the_token(api):
    api.throttle, api.retry_after = 1, "7"
    status, headers, problem = send(api, "GET", "/v1/models/me/sam2enc")
    assert (status, headers["Retry-After"], problem["status"]) == (429, "7", 429)
    assert send(api, "GET", "/v1/models/me/sam2enc")[0] == 200
    api.outputs_need_token, api.files["x/manifest.json"] = True, b"{}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{api.url}/delivery/x/manifest.json", timeout=5)
    assert refused.value.code == 401
    status, _, body = send(api, "GET", "/delivery/x/manifest.json")  # with the token
    assert (status, body) == (200, {})


def test_prefer_wait_holds_the_create_answer_until_final_or_n_seconds(api):
    """Sync mode: 201 with the final prediction, or 202 with the unfinished one after N s."""
    api.fake_output, api.duration = ["https://replicate.delivery/x/manifest.json"], 0.3
    started = time.monotonic()
    create = {"version": VERSION, "input": IMAGE}
    status, _, done = send(api, "POST", "/v1/predictions", create, Prefer="wait")
    assert (status, done["status"]) == (201, "succeeded") and time.monotonic() - started >= 0.3
    api.delay, api.wait_scale = 30.0, 0.1
    started = time.monotonic()
    status, _, queued = send(api, "POST", "/v1/predictions", create, Prefer="wait=5")
    assert (status, queued["status"]) == (202, "starting") and 0.5 <= time.monotonic() - started < 2
    send(api, "POST", f"/v1/predictions/{queued['id']}/cancel")
    refused = send(api, "POST", "/v1/predictions", create, Prefer="wait=61")  # the pattern allows 61..99
    assert refused[0] == 422 and "Prefer" in refused[2]["detail"]
