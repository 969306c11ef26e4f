# The hosted proxy in workerd, the open-source Cloudflare Workers runtime (npm "workerd", pinned in
# package.json), on this machine: the same runtime as a deployed Worker, without an account.
#   REPLICATE_API_BASE=https://api.replicate.com/v1 ALLOWED_ORIGINS=http://localhost:8000 \
#     npx workerd serve sam2enc/web/edge/examples/workerd/config.capnp [--socket-addr http=127.0.0.1:8787]
# tests/test_edge_workerd.py runs it in front of the Replicate stand-in. Unset settings take proxy.js's
# defaults (see README "Deploy the page and the proxy").
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "proxy", worker = .proxy),
    # Outbound fetches: the internet, and this machine's loopback (a local stand-in upstream).
    (name = "internet", network = (allow = ["public", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "proxy")],
);

const proxy :Workerd.Worker = (
  modules = [
    (name = "proxy.js", esModule = embed "../../proxy.js"),
    (name = "policy.js", esModule = embed "../../policy.js"),
  ],
  compatibilityDate = "2025-01-01",  # as examples/cloudflare/wrangler.toml
  bindings = [
    (name = "REPLICATE_API_BASE", fromEnvironment = "REPLICATE_API_BASE"),
    (name = "ALLOWED_ORIGINS", fromEnvironment = "ALLOWED_ORIGINS"),
    (name = "CANCEL_AFTER", fromEnvironment = "CANCEL_AFTER"),
  ],
  globalOutbound = "internet",
);
