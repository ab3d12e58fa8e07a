"""Screenshots of the dashboard for the README's "Pages" section (issue 9): the project lead and a content
manager, in Russian and Chinese, as PNGs under docs/screenshots/.

    make up                                              # a demo stack (seeded), in another terminal
    uv run python scripts/screenshots.py                 # against http://127.0.0.1:8000
    uv run python scripts/screenshots.py --base http://127.0.0.1:18000 --out docs/screenshots

Signs in through the login form with the demo password (`ZABOTA_DEMO_PASSWORD`, default `demo`) in Debian's
chromium (/usr/bin/chromium) through Playwright, one fresh browser context per shot, 1280 px wide, the full page.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = [("lead", "ru"), ("lead", "zh"), ("manager1", "ru"), ("manager1", "zh")]


async def shoot(base: str, out: Path, password: str) -> list[Path]:
    from playwright.async_api import async_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for login, language in SHOTS:
                context = await browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
                page = await context.new_page()
                await page.goto(f"{base}/login?lang={language}")
                await page.fill("input[name=login]", login)
                await page.fill("input[name=password]", password)
                await page.click("button[type=submit]")
                await page.wait_for_url(f"{base}/")
                await page.goto(f"{base}/?lang={language}")
                await page.wait_for_load_state("networkidle")
                path = out / f"dashboard-{login}-{language}.png"
                await page.screenshot(path=str(path), full_page=True)
                written.append(path)
                await context.close()
        finally:
            await browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000", help="the gateway of a seeded demo stack")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "screenshots"))
    args = parser.parse_args(argv)
    password = os.environ.get("ZABOTA_DEMO_PASSWORD", "demo")
    for path in asyncio.run(shoot(args.base.rstrip("/"), Path(args.out), password)):
        print(f"screenshots: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
