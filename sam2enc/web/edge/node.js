// Run the hosted proxy (./proxy.js) on Node >= 20 for local use:
//   REPLICATE_API_BASE=... ALLOWED_ORIGINS=http://localhost:8000 node sam2enc/web/edge/node.js [--host H] [--port P]
// It only translates node:http to the Fetch API and back, bodies streamed both ways; every rule lives
// in proxy.js.

import { createServer } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import handler from "./proxy.js";

/** A node:http server that answers every request with `handler.fetch(request, env)`. */
export function createProxyServer(env = process.env) {
  return createServer(async (incoming, outgoing) => {
    const headers = new Headers();
    for (const [name, value] of Object.entries(incoming.headers)) {
      for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
    }
    const hasBody = !["GET", "HEAD"].includes(incoming.method);
    const request = new Request(`http://${incoming.headers.host || "localhost"}${incoming.url}`, {
      method: incoming.method,
      headers,
      body: hasBody ? Readable.toWeb(incoming) : undefined,
      duplex: hasBody ? "half" : undefined,
    });
    const response = await handler.fetch(request, env);
    outgoing.writeHead(response.status, Object.fromEntries(response.headers));
    if (!response.body || request.method === "HEAD") {
      await response.body?.cancel().catch(() => {});
      outgoing.end();
      return;
    }
    // Streamed as it comes (chunked): an answer cut off upstream ends the connection, not a short body.
    pipeline(Readable.fromWeb(response.body), outgoing).catch(() => outgoing.destroy());
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] || "").href) {
  const args = process.argv.slice(2);
  const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
  const host = option("--host", "127.0.0.1");
  const server = createProxyServer(process.env);
  server.listen(Number(option("--port", "8787")), host, () => {
    console.log(`sam2enc proxy on http://${host}:${server.address().port}/ (upstream ${process.env.REPLICATE_API_BASE || "https://api.replicate.com/v1"})`);
  });
}
