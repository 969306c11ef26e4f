export const DELIVERY_HOST: "replicate.delivery";
/** Redirects a download follows at most. */
export const MAX_REDIRECTS: 3;
/** The scheme, lower-case host and port of an http(s) URL in plain form; null for anything else. */
export function origin(url: string): { scheme: string; host: string; port: number } | null;
/** 127.0.0.0/8 (dotted decimal), ::1 or localhost. */
export function isLoopback(hostname: string): boolean;
/** May the proxy fetch this output URL (the upstream's origin, or https://(*.)replicate.delivery)? */
export function fileHostAllowed(url: string, apiBase: string): boolean;
/** May the caller's token go to this URL (where it may be fetched, over https or to loopback)? */
export function tokenAllowed(url: string, apiBase: string): boolean;
/** Where a redirect from `current` to `location` leads, if the policy would fetch it; else null. */
export function redirectTarget(location: string | null, current: string, apiBase: string): string | null;
