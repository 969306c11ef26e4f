// Vercel: put this file at api/[...path].js in the project that hosts the proxy; every /api/* request
// runs the same Fetch-API handler (Edge runtime). Set REPLICATE_API_BASE / ALLOWED_ORIGINS in the
// project's environment variables.
import handler from "sam2enc/proxy";

export const config = { runtime: "edge" };

export default (request) => handler.fetch(request, process.env);
