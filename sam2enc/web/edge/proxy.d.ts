/** Settings read from the host's environment (Workers vars, Vercel/Deno/Node env). */
export interface ProxyEnv {
  /** Replicate-compatible API base URL; default https://api.replicate.com/v1. */
  REPLICATE_API_BASE?: string;
  /** Comma-separated origins whose pages may call the proxy (besides its own); others get 403. */
  ALLOWED_ORIGINS?: string;
  /** Seconds sent as Cancel-After on every prediction created (default 600; 0: none; minimum 5). */
  CANCEL_AFTER?: string;
  [name: string]: unknown;
}

/** The token proxy as one Fetch-API handler (Cloudflare Workers' module syntax). */
declare const handler: {
  fetch(request: Request, env?: ProxyEnv): Promise<Response>;
};
export default handler;
