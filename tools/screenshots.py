"""The page's screenshots for the README: docs/app.png (1400 px wide) and docs/app-phone.png (390×844).

`python -m tools.screenshots [--models-dir D] [--out docs]` serves the page with the demo photo (random
weights when D has no exported model: the masks are then meaningless, the page is not), places an include
and an exclude click in headless chromium and saves both viewports. About 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from sam2enc.web import assets
from sam2enc.web.proxy import serve
from tests.web.browser import Browser

ROOT = Path(__file__).resolve().parents[1]
CLICKS = "const [x, y] = await ctx.at(args.x, args.y); await ctx.page.mouse.click(x, y, {button: args.b})"
TAP = "const [x, y] = await ctx.at(args.x, args.y); await ctx.page.touchscreen.tap(x, y)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    models = args.models_dir or assets.random_models(assets.RANDOM_MODELS)
    proxy = serve("127.0.0.1", 0, "http://127.0.0.1:9/v1", models)
    assets.install(proxy, assets.demo_bundle(models))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    page = f"http://127.0.0.1:{proxy.server_address[1]}/?backend=wasm"
    browser = Browser()
    try:
        browser.open(page, width=1400, height=900)
        browser.call("await ctx.page.click('#demo')")
        browser.ready()
        for x, y, button in ((250, 190, "left"), (330, 470, "right")):
            browser.call(CLICKS, x=x, y=y, b=button)
            browser.settled()
        browser.screenshot(args.out / "app.png")
        browser.open(page, width=390, height=844, mobile=True)
        browser.call("await ctx.page.click('#demo')")
        browser.ready()
        browser.call("await ctx.page.locator('#mask-canvas').scrollIntoViewIfNeeded()")
        browser.call(TAP, x=250, y=190)
        browser.settled()
        browser.screenshot(args.out / "app-phone.png")
    finally:
        browser.close()
        proxy.shutdown()
    print(f"wrote {args.out / 'app.png'} and {args.out / 'app-phone.png'}")


if __name__ == "__main__":
    main()
