"""The browser side: a token-forwarding proxy that also serves the static app and decoder files."""
