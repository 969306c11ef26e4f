"""Semantic mutations of the Replicate contract, the API token's reach and the token proxy, each with
the tests that must catch it.

Plain data for ``make mutate`` (tools/mutate.py, ``--group replicate``): ``MUTATIONS = {name: (file,
[(find, replace), ...], [tests])}``. Each find text occurs exactly once in its file (sam2enc/client.py,
sam2enc/web/proxy.py or tests/replicate_standin.py); the mutation is applied to a temporary copy of the
tree, never to the working tree, and is caught when its tests fail. The tests are single node ids where
one test suffices, so the whole group stays short.
"""

from __future__ import annotations

CLIENT = "sam2enc/client.py"
PROXY = "sam2enc/web/proxy.py"
STANDIN = "tests/replicate_standin.py"
C = "tests/test_client.py::"
P = "tests/test_proxy.py::"
CONTRACT = "tests/test_replicate_contract.py::"

C_TOKEN_HOSTS = C + "test_the_token_goes_to_the_api_and_replicate_delivery_only"
C_NOT_HTTP = C + "test_outputs_that_are_not_http_urls_are_refused_before_connecting"
C_LOOPBACK = C + "test_plain_http_carries_the_token_only_to_a_loopback_api"
C_REDIRECT = C + "test_the_token_never_follows_a_redirect"
# the four stand-in-free tests of where the client's token may go (test_client -k "token_goes or
# not_http or loopback or redirect")
C_WHERE_THE_TOKEN_GOES = [C_TOKEN_HOSTS, C_NOT_HTTP, C_LOOPBACK, C_REDIRECT]

# name: (file, [(find, replace), ...], tests)
MUTATIONS: dict[str, tuple[str, list[tuple[str, str]], list[str]]] = {
    # --- the proxy's output-file hosts and its token ----------------------------------------------
    "proxy delivery allow-list emptied": (
        PROXY,
        [('DELIVERY_HOSTS = ("replicate.delivery",)', "DELIVERY_HOSTS = ()")],
        [P + "test_replicate_delivery_is_allowed_with_the_token"],
    ),
    "proxy allow-list loosened to endswith (evilreplicate.delivery)": (
        PROXY,
        [('any(host == h or host.endswith("." + h) for h in', "any(host.endswith(h) for h in")],
        [P + "test_other_hosts_are_refused_before_connecting"],
    ),
    "proxy logs the request headers on an upstream error": (
        PROXY,
        [
            (
                "            status, payload, kind = exc.code, exc.read(MAX_ANSWER + 1), "
                'exc.headers.get("Content-Type")',
                '            log.warning("upstream answered %s to %s", exc.code, request.headers)\n'
                "            status, payload, kind = exc.code, exc.read(MAX_ANSWER + 1), "
                'exc.headers.get("Content-Type")',
            )
        ],
        [P + "test_upstream_errors_pass_through_unchanged_and_never_leak_the_token"],
    ),
    "proxy does not forward cancel": (
        PROXY,
        [
            (
                'return self._forward("POST", f"{self.server.upstream}/predictions/{match.group(1)}/cancel")',
                'return self._error(404, "not found")',
            )
        ],
        [P + "test_cancel_and_model_lookup_are_forwarded_with_the_token"],
    ),
    "proxy drops Cancel-After": (
        PROXY,
        [
            (
                'return self._forward("POST", f"{self.server.upstream}/predictions", extra=deadline)',
                'return self._forward("POST", f"{self.server.upstream}/predictions")',
            )
        ],
        [P + "test_predictions_are_created_with_a_deadline"],
    ),
    "proxy sends the token over http to a non-loopback host": (
        PROXY,
        [
            (
                'return self.file_host_allowed(url) and (url.startswith("https://") or loopback)',
                "return self.file_host_allowed(url)",
            )
        ],
        [P + "test_plain_http_carries_the_token_only_to_a_loopback_upstream"],
    ),
    "proxy has no token retry": (
        PROXY,
        [("retry = auth if auth and self.server.token_allowed(url) else None", "retry = None")],
        [P + "test_output_files_that_want_the_token_get_it_once"],
    ),
    "proxy rewrites upstream errors": (
        PROXY,
        [
            (
                "            status, payload, kind = exc.code, exc.read(MAX_ANSWER + 1), "
                'exc.headers.get("Content-Type")',
                '            return self._error(502, f"the upstream answered {exc.code}")',
            )
        ],
        [P + "test_upstream_errors_pass_through_unchanged_and_never_leak_the_token"],
    ),
    # --- where the client's token may go ----------------------------------------------------------
    "client delivery allow-list emptied": (
        CLIENT,
        [('and (host == DELIVERY or host.endswith("." + DELIVERY))', "and host in ()")],
        C_WHERE_THE_TOKEN_GOES,
    ),
    "client endswith(DELIVERY) without the dot": (
        CLIENT,
        [('host.endswith("." + DELIVERY)', "host.endswith(DELIVERY)")],
        C_WHERE_THE_TOKEN_GOES,
    ),
    "client sends the token over http to a non-loopback host": (
        CLIENT,
        [('    if parts.scheme == "http" and not _loopback(host):\n        return False\n', "")],
        C_WHERE_THE_TOKEN_GOES,
    ),
    "client sends the token on the first download": (
        CLIENT,
        [
            (
                'request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})',
                'request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})\n'
                "    if token and token_allowed(url, api_origin):\n"
                '        request.add_unredirected_header("Authorization", f"Bearer {token}")',
            )
        ],
        C_WHERE_THE_TOKEN_GOES,
    ),
    "client token follows a redirect": (
        CLIENT,
        [
            (
                'request.add_unredirected_header("Authorization", f"Bearer {token}")',
                'request.add_header("Authorization", f"Bearer {token}")',
            )
        ],
        C_WHERE_THE_TOKEN_GOES,
    ),
    "client never retries a download with the token": (
        CLIENT,
        [
            (
                "        if status in (401, 403) and token and token_allowed(url, api_origin):",
                "        if False:",
            )
        ],
        [C_TOKEN_HOSTS, C + "test_outputs_that_need_the_token_get_it_once"],
    ),
    # --- the client against Replicate's API (the stand-in) ----------------------------------------
    "client: aborted is not a final status": (
        CLIENT,
        [
            (
                'TERMINAL = ("succeeded", "failed", "canceled", "aborted")',
                'TERMINAL = ("succeeded", "failed", "canceled")',
            )
        ],
        [C + "test_the_deadline_is_sent_and_replicate_aborts_a_prediction_that_never_started"],
    ),
    "client runs owner/name on the model endpoint (no latest version)": (
        CLIENT,
        [
            (
                '    try:\n        found = api.call("GET", f"/models/{ref}")',
                '    return f"/models/{ref}/predictions", {}\n'
                '    try:\n        found = api.call("GET", f"/models/{ref}")',
            )
        ],
        # its first case, [me/sam2enc], fails and -x stops the run there
        [C + "test_a_users_own_model_runs_by_name_by_version_or_by_id"],
    ),
    "client does not retry 429": (
        CLIENT,
        [
            (
                '(status == 429 or (method == "GET" and status >= 500))',
                '(method == "GET" and status >= 500)',
            )
        ],
        [C + "test_429_is_retried_after_retry_after"],
    ),
    "client MAX_OUTPUT check removed": (
        CLIENT,
        [("    if len(payload) > MAX_OUTPUT:", "    if False:")],
        [C + "test_an_oversized_output_file_is_refused"],
    ),
    "client MAX_ANSWER check removed": (
        CLIENT,
        [("        if len(payload) > MAX_ANSWER:", "        if False:")],
        [C + "test_an_oversized_api_answer_is_refused"],
    ),
    "client missing-output message removed": (
        CLIENT,
        [
            (
                "    if len(outputs) == 1 and names[0] in (EMBEDDING_FILE, MANIFEST_FILE):",
                "    if False:",
            )
        ],
        [C + "test_one_missing_output_names_it_and_the_failed_upload"],
    ),
    # --- the stand-in must stay Replicate's schema and behaviour ----------------------------------
    "stand-in omits data_removed": (
        STANDIN,
        [('            "data_removed": False,\n', "")],
        [CONTRACT + "test_cancel_after_aborts_a_queued_prediction_and_cancel_cancels"],
    ),
    "stand-in runs a user's model by name": (
        STANDIN,
        [
            (
                'if model is None or not model["visible"] or not model["official"]:',
                'if model is None or not model["visible"]:',
            )
        ],
        [CONTRACT + "test_only_official_models_run_by_name"],
    ),
}
