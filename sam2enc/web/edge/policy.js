// Where the hosted proxy may fetch an output file, and where it may send the caller's token.
// The same rules as sam2enc/client.py's token_allowed and sam2enc/web/proxy.py; all three pass the one
// table of cases in tests/fixtures/token-policy.json. DOM-free: runs on Workers, Vercel, Deno and Node.

export const DELIVERY_HOST = "replicate.delivery";

/** `url` parsed, or null when it is not an absolute http(s) URL. */
function parse(url) {
  if (typeof url !== "string" || !/^https?:\/\//i.test(url)) return null;
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

/** The origin a URL is compared by: scheme, lower-case host, port (default ports filled in). */
function origin(url) {
  return `${url.protocol}//${url.hostname}:${url.port || (url.protocol === "https:" ? "443" : "80")}`;
}

/** 127.0.0.0/8, ::1 or the name localhost: a local stand-in that plain http may reach with the token. */
export function isLoopback(hostname) {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (host === "localhost" || host === "::1" || host === "0:0:0:0:0:0:0:1") return true;
  const parts = host.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255) && parts[0] === "127";
}

/** Is `hostname` replicate.delivery or one of its subdomains? */
function isDelivery(hostname) {
  return hostname === DELIVERY_HOST || hostname.endsWith(`.${DELIVERY_HOST}`);
}

/** May the proxy fetch `url` for the page? The upstream's own origin, or Replicate's delivery hosts
 * over https on the default port. Anything else (look-alikes, plain http, link-local, file:) is not. */
export function fileHostAllowed(url, apiBase) {
  const target = parse(url);
  const api = parse(apiBase);
  if (!target) return false;
  if (api && origin(target) === origin(api)) return true;
  return target.protocol === "https:" && target.port === "" && isDelivery(target.hostname);
}

/** May a download of `url` that answered 401/403 be retried with the caller's token? Where it may be
 * fetched, and over plain http only to a loopback upstream. */
export function tokenAllowed(url, apiBase) {
  if (!fileHostAllowed(url, apiBase)) return false;
  const target = new URL(url);
  return target.protocol === "https:" || isLoopback(target.hostname);
}
