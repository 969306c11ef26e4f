// Where the hosted proxy may fetch an output file, and where it may send the caller's token: the one
// policy, line for line as sam2enc/policy.py (which sam2enc/client.py and sam2enc/web/proxy.py follow);
// all three pass the one table of cases in tests/fixtures/token-policy.json. DOM-free: runs on Workers,
// Vercel, Deno and Node.
//
// A URL is read only in its plain form, scheme://host[:port] then a path of printable ASCII: one with
// userinfo, a backslash, whitespace, a percent-encoded or non-ASCII host is refused, since URL parsers
// (WHATWG's, Python's) disagree about where such a URL's host is. A download goes first without the
// token; a 401/403 is retried once with it, at the URL that asked for it, where tokenAllowed; a redirect
// (from any answer, the token's too) is followed without the token and only to a URL fileHostAllowed,
// at most MAX_REDIRECTS times. At most one request of a download carries the token.

export const DELIVERY_HOST = "replicate.delivery";
export const MAX_REDIRECTS = 3;
// scheme://host[:port] then a path, query or fragment of printable ASCII other than the backslash.
const URL_FORM = /^(https?):\/\/([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:]+\])(?::([0-9]{1,5}))?([/?#][!-[\]-~]*)?$/i;
const LOCATION_FORM = /^[!-[\]-~]+$/; // a Location header worth resolving: the same characters
const OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const LOOPBACK_V4 = new RegExp(`^127\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** `url`'s scheme, lower-case host and port (the default one filled in); null unless it is an http(s)
 * URL in the plain form above. */
export function origin(url) {
  const match = typeof url === "string" ? URL_FORM.exec(url) : null;
  if (!match) return null;
  const scheme = match[1].toLowerCase();
  const port = match[3] !== undefined ? Number(match[3]) : scheme === "https" ? 443 : 80;
  if (port > 65535) return null;
  return { scheme, host: match[2].toLowerCase(), port };
}

/** localhost, 127.0.0.0/8 in dotted decimal, or ::1: a local stand-in that plain http may reach. */
export function isLoopback(hostname) {
  let host = hostname.toLowerCase();
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return ["localhost", "::1", "0:0:0:0:0:0:0:1"].includes(host) || LOOPBACK_V4.test(host);
}

function isDelivery(host) {
  return host === DELIVERY_HOST || host.endsWith(`.${DELIVERY_HOST}`);
}

const same = (a, b) => a !== null && b !== null && a.scheme === b.scheme && a.host === b.host && a.port === b.port;

/** May the proxy fetch `url` for the page? The upstream's own origin, or Replicate's delivery hosts
 * over https on the default port. */
export function fileHostAllowed(url, apiBase) {
  const target = origin(url);
  if (target === null) return false;
  if (apiBase != null && same(target, origin(apiBase))) return true;
  return target.scheme === "https" && target.port === 443 && isDelivery(target.host);
}

/** May the caller's token be sent to `url`? Where it may be fetched, over https, or over plain http to
 * a loopback address only. */
export function tokenAllowed(url, apiBase) {
  const target = origin(url);
  return fileHostAllowed(url, apiBase) && (target.scheme === "https" || isLoopback(target.host));
}

/** The URL a redirect from `current` leads to, if the policy would fetch it; else null. */
export function redirectTarget(location, current, apiBase) {
  if (typeof location !== "string" || !LOCATION_FORM.test(location)) return null;
  let target;
  try {
    target = new URL(location, current).href;
  } catch {
    return null;
  }
  return fileHostAllowed(target, apiBase) ? target : null;
}
