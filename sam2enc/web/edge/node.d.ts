import type { Server } from "node:http";
import type { ProxyEnv } from "./proxy.js";
/** A node:http server answering every request with the proxy's fetch handler. */
export function createProxyServer(env?: ProxyEnv | NodeJS.ProcessEnv): Server;
