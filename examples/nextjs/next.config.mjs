// A static export (`next build` writes out/): any static host serves it, no Node server. The app's own
// folder is its root (this repository has a lockfile of its own further up).
import { fileURLToPath } from "node:url";

/** @type {import("next").NextConfig} */
export default {
  output: "export",
  outputFileTracingRoot: fileURLToPath(new URL(".", import.meta.url)),
};
