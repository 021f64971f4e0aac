"""Screenshots of the app's three tabs for the README, taken in Debian's Chromium with Playwright.

    .venv/bin/python scripts/app_screenshots.py                  # the example site in ./workspace (make example)
    .venv/bin/python scripts/app_screenshots.py --workspace DIR --out docs/screenshots

Launches the app on a free local port, opens the example site, runs Segment on the preloaded example clip with
the preselected methods (the demo model when present, mog2, plate-diff), and saves site.png, train.png and
segment.png. Nothing in the workspace changes except a new segmentation output folder.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load_lazy_images(page) -> None:
    """Scroll through the page so lazily loaded images (galleries, previews) are fetched before the shot."""
    height = page.evaluate("document.body.scrollHeight")
    for y in range(0, height + 800, 800):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(250)
    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=60_000)
    page.evaluate("window.scrollTo(0, 0)")


def _shrink(path: Path) -> None:
    """Re-save as a 256-colour PNG: a third of the size, no visible loss on UI screenshots (kept in git)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def take(workspace: Path | None, out: Path, chromium: str, width: int) -> list[Path]:
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import sync_playwright

    import app

    port = _free_port()
    app.launch(workspace, port=port, prevent_thread_lock=True, quiet=True)
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.set_default_timeout(600_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("tab", name="3. Segment").wait_for()
            page.wait_for_timeout(3000)  # the load events fill the site's galleries

            _load_lazy_images(page)
            shots.append(out / "site.png")
            page.screenshot(path=str(shots[-1]), full_page=True)

            page.get_by_role("tab", name="2. Train").click()
            page.wait_for_timeout(1500)
            shots.append(out / "train.png")
            page.screenshot(path=str(shots[-1]), full_page=True)

            page.get_by_role("tab", name="3. Segment").click()
            page.locator("#seg-video video").wait_for()
            page.get_by_role("button", name="Segment", exact=True).click()
            page.wait_for_function(
                "() => { const v = document.querySelector('#sbs-video video'); return v && v.readyState >= 2; }"
            )
            # Show a frame from the middle: background subtractors are still learning on the first frames.
            page.locator("#sbs-video video").evaluate(
                "v => new Promise(r => { v.addEventListener('seeked', r, {once: true}); v.currentTime = v.duration / 2; })"
            )
            page.wait_for_timeout(1000)
            _load_lazy_images(page)
            shots.append(out / "segment.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
            browser.close()
    finally:
        app.demo.close()
    for path in shots:
        _shrink(path)
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="workspace with the example site (default: as the app)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder for the PNGs")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    parser.add_argument("--width", type=int, default=1280, help="browser window width in pixels")
    args = parser.parse_args(argv)
    for path in take(args.workspace, args.out, args.chromium, args.width):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
