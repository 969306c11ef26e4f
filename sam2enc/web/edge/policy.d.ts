export const DELIVERY_HOST: "replicate.delivery";
/** 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(hostname: string): boolean;
/** May the proxy fetch this output URL (the upstream's origin, or https://(*.)replicate.delivery)? */
export function fileHostAllowed(url: string, apiBase: string): boolean;
/** May a download of this URL that answered 401/403 be retried with the caller's token? */
export function tokenAllowed(url: string, apiBase: string): boolean;
