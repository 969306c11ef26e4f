"""Where an output file may be fetched from, and where the API token may go: the one policy.

``sam2enc/client.py`` (its downloads), the local proxy ``sam2enc/web/proxy.py`` and the hosted handler
``sam2enc/web/edge/proxy.js`` (through ``edge/policy.js``, this module's JavaScript twin, line for line)
follow it; ``tests/fixtures/token-policy.json`` is the table all three pass.

- ``fetch_allowed(url, api_base)``: the API's own origin (scheme, host, port), or
  ``https://replicate.delivery`` / ``https://*.replicate.delivery`` on the default port. Nothing else:
  not look-alikes, not plain http to Replicate, not link-local, not ``file:``. A URL is read only in its
  plain form, ``scheme://host[:port]`` then a path of printable ASCII: one with userinfo (``@`` before
  the host), a backslash, whitespace, a percent-encoded or non-ASCII host is refused, since URL parsers
  (WHATWG's, Python's) disagree about where such a URL's host is.
- ``token_allowed(url, api_base)``: a URL it may fetch, over https, or over plain http to a loopback
  address (a local stand-in).
- ``download(url, api_base, authorization, send)``: an output file, first without the token; a 401/403
  is retried once with it, at the URL that asked for it, where ``token_allowed``; a redirect (from any
  answer, the token's too) is followed without the token and only to a URL ``fetch_allowed``, at most
  ``MAX_REDIRECTS`` times: anything else raises ``RedirectRefused``. At most one request carries the token.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import NamedTuple

DELIVERY_HOST = "replicate.delivery"
MAX_REDIRECTS = 3
# scheme://host[:port] then a path, query or fragment of printable ASCII other than the backslash.
URL_FORM = re.compile(
    r"(https?)://([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:]+\])(?::([0-9]{1,5}))?([/?#][!-\[\]-~]*)?",
    re.IGNORECASE,
)
LOCATION_FORM = re.compile(r"[!-\[\]-~]+")  # a Location header worth resolving: the same characters
OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
LOOPBACK_V4 = re.compile(rf"127\.{OCTET}\.{OCTET}\.{OCTET}")


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


class RedirectRefused(Exception):
    """A download answered with a redirect the policy does not follow (the message says why)."""


def origin(url: str) -> Origin | None:
    """``url``'s scheme, lower-case host and port (the default one filled in); None unless it is an
    http(s) URL in the plain form above."""
    match = URL_FORM.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        return None
    scheme = match.group(1).lower()
    port = int(match.group(3)) if match.group(3) is not None else (443 if scheme == "https" else 80)
    if port > 65535:
        return None
    return Origin(scheme, match.group(2).lower(), port)


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 in dotted decimal, or ``::1``: a local stand-in plain http may reach."""
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host in ("localhost", "::1", "0:0:0:0:0:0:0:1") or LOOPBACK_V4.fullmatch(host) is not None


def is_delivery(host: str) -> bool:
    return host == DELIVERY_HOST or host.endswith("." + DELIVERY_HOST)


def fetch_allowed(url: str, api_base: str | None = None) -> bool:
    """May ``url`` be fetched for the caller? The API's own origin, or Replicate's delivery hosts over
    https on the default port."""
    target = origin(url)
    if target is None:
        return False
    if api_base is not None and target == origin(api_base):
        return True
    return target.scheme == "https" and target.port == 443 and is_delivery(target.host)


def token_allowed(url: str, api_base: str | None = None) -> bool:
    """May the caller's token be sent to ``url``? Where it may be fetched, over https, or over plain
    http to a loopback address only."""
    target = origin(url)
    return fetch_allowed(url, api_base) and (target.scheme == "https" or is_loopback(target.host))


def redirect_target(location: str | None, current: str, api_base: str | None) -> str | None:
    """The URL a redirect from ``current`` leads to, if the policy would fetch it; else None."""
    if location is None or LOCATION_FORM.fullmatch(location) is None:
        return None
    target = urllib.parse.urljoin(current, location)
    return target if fetch_allowed(target, api_base) else None


def _header(headers, name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name.lower()), None)


def download(
    url: str,
    api_base: str | None,
    authorization: str | None,
    send: Callable[[str, str | None], tuple[int, object, object]],
):
    """Fetch an output file under the policy: ``send(url, authorization or None)`` makes one request
    (no redirect followed) and returns ``(status, headers, answer)``; the last one is returned. An
    answer left behind (a redirect, a 401/403 retried) is closed when it has ``close``."""
    current, sending, spent, redirects = url, None, False, 0
    while True:
        status, headers, answer = send(current, sending)
        if 300 <= status < 400:
            _close(answer)
            target = redirect_target(_header(headers, "Location"), current, api_base)
            if target is None:
                raise RedirectRefused("redirected to a host outside the download policy")
            if redirects >= MAX_REDIRECTS:
                raise RedirectRefused(f"redirected more than {MAX_REDIRECTS} times")
            current, sending, redirects = target, None, redirects + 1
            continue
        if status in (401, 403) and authorization and not spent and token_allowed(current, api_base):
            _close(answer)
            sending, spent = authorization, True
            continue
        return status, headers, answer


def _close(answer: object) -> None:
    close = getattr(answer, "close", None)
    if close is not None:
        close()
