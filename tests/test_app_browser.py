"""The app in a real browser: Debian's Chromium driven by Playwright.

Uploads clips through the page, runs Segment, checks that the output video really plays in the browser
(``readyState >= 2``, no media error), that bad inputs show an error message and the next request works, and
that every tab renders. Screenshots go to ``$HUMANSEG_SCREENSHOT_DIR`` (default: the test's temp folder); the
README's screenshots come from ``scripts/app_screenshots.py`` on the example site.

Playwright cannot download browsers here, so it launches ``/usr/bin/chromium`` (``make browser`` installs it).
Without it the tests skip, except under ``CI=true`` where a missing browser is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.register_assert_rewrite("app_fixtures")

pytest_plugins = ["app_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")]

CHROMIUM = Path(os.environ.get("HUMANSEG_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
TIMEOUT_MS = 90_000  # a 2-core CI machine shared with other jobs can be slow


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        message = f"Chromium not found at {CHROMIUM}: install it with `make browser` (Debian package chromium)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, app_server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_server.url)
    page.get_by_role("tab", name="3. Segment").wait_for()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("HUMANSEG_SCREENSHOT_DIR")
    out = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def upload_clip(page, path: Path) -> None:
    """Replace the Segment tab's clip with ``path`` (clearing the one shown, if any)."""
    box = page.locator("#seg-video")
    clear = box.get_by_label("Clear")
    if clear.count():
        clear.click()
    box.locator("input[type=file]").set_input_files(str(path))
    box.locator("video").wait_for()  # uploaded: the component shows its player


def run_segment_expect_error(page, text: str) -> None:
    page.get_by_role("button", name="Segment", exact=True).click()
    toast = page.locator(".toast-body").filter(has_text=text)
    toast.first.wait_for()
    page.locator(".toast-close").first.click()  # dismiss all, so the next check starts clean
    page.locator(".toast-body").first.wait_for(state="detached")


def video_state(page, selector: str) -> dict:
    return page.locator(selector).evaluate(
        "v => ({ready: v.readyState, error: v.error ? v.error.code : null, width: v.videoWidth, "
        "height: v.videoHeight, duration: v.duration, src: v.currentSrc})"
    )


def test_segment_in_the_browser_plays_and_survives_bad_inputs(page, inputs, shots):
    page.get_by_role("tab", name="3. Segment").click()
    # Bad inputs first: each shows an error naming the problem, and the app keeps serving.
    upload_clip(page, inputs.text_file)
    run_segment_expect_error(page, "not a readable video")
    upload_clip(page, inputs.zero_frames)
    run_segment_expect_error(page, "zero frames")
    upload_clip(page, inputs.site_clip)
    page.locator("#gt-zip input[type=file]").set_input_files(str(inputs.empty_zip))
    run_segment_expect_error(page, "empty zip")
    page.locator("#gt-zip").get_by_label("Clear").click()

    # Then a real run, with an anonymised video: the side-by-side video arrives and the browser decodes it.
    style = page.locator("#seg-anonymise input")
    style.click()
    page.get_by_role("option", name="pixelate", exact=True).click()
    page.get_by_role("button", name="Segment", exact=True).click()
    page.locator("#sbs-video video").wait_for()
    page.wait_for_function(
        "() => { const v = document.querySelector('#sbs-video video'); return v && v.readyState >= 2 || (v && v.error); }",
        timeout=TIMEOUT_MS,
    )
    state = video_state(page, "#sbs-video video")
    assert state["error"] is None, state
    assert state["ready"] >= 2
    assert (state["width"], state["height"]) == (3 * 160, 120 + 18)  # input | mog2 | plate-diff, caption bar
    assert state["duration"] == pytest.approx(2.0, abs=0.2)  # 20 frames at 10 fps
    # wait_for (visible), not is_visible: the summary table may render a moment after the video on a busy machine.
    page.get_by_text("ms/frame").first.wait_for()
    # The summary names both methods, and the video element shows decoded frames (not a blank or error box).
    for method in ("mog2", "plate-diff"):
        page.get_by_role("cell", name=method, exact=True).first.wait_for()
    player = page.locator("#sbs-video video")
    player.evaluate("v => new Promise(done => { v.pause(); v.currentTime = 1.0; v.onseeked = () => done(); })")
    assert varied_pixels(player.screenshot()) > 0.2
    # The anonymised video of the method shown plays too: decoded frames of the clip's size, not a blank box.
    page.locator("#anon-video video").wait_for()
    page.wait_for_function(
        "() => { const v = document.querySelector('#anon-video video'); return v && v.readyState >= 2 || (v && v.error); }",
        timeout=TIMEOUT_MS,
    )
    anon = video_state(page, "#anon-video video")
    assert anon["error"] is None and anon["ready"] >= 2, anon
    assert (anon["width"], anon["height"]) == (160, 120) and "mog2_anonymised.mp4" in anon["src"]
    assert anon["duration"] == pytest.approx(2.0, abs=0.2)
    anon_player = page.locator("#anon-video video")
    anon_player.evaluate("v => new Promise(done => { v.pause(); v.currentTime = 1.0; v.onseeked = () => done(); })")
    assert varied_pixels(anon_player.screenshot()) > 0.2
    # The count chart and the occupancy heatmap are drawn under the videos.
    for image in ("#count-chart img", "#heatmap img"):
        page.locator(image).wait_for()
        # The element exists before its picture is decoded; a screenshot then would be blank.
        page.wait_for_function(
            f"() => {{ const i = document.querySelector('{image}'); return i.complete && i.naturalWidth > 0; }}"
        )
        assert varied_pixels(page.locator(image).screenshot()) > 0.05, image
    page.screenshot(path=str(shots / "segment.png"), full_page=True)


def test_review_silhouettes_click_and_reject(page, client, inputs, app_server):
    """Select a silhouette by clicking it in the gallery, reject it, and see the index change on disk."""
    import json

    from gradio_client import handle_file

    client.predict("browser-site", api_name="/create_site")
    client.predict(
        "browser-site", handle_file(inputs.actor_clip), handle_file(inputs.actor_masks_zip), "masks", 4,
        api_name="/extract_silhouettes",
    )  # fmt: skip
    page.reload()
    site = page.locator("#site-dd input")
    site.click()
    site.fill("browser-site")
    page.get_by_role("option", name="browser-site").click()
    thumbs = page.locator("#sil-gallery button.thumbnail-item")
    thumbs.first.wait_for()
    index = app_server.workspace / "browser-site" / "silhouettes" / "actor-masks" / "silhouettes.json"
    first = json.loads(index.read_text())["items"][0]["name"]
    thumbs.first.click()
    page.locator(".token").filter(has_text=first).wait_for()  # the click selected it
    page.get_by_role("button", name="Reject selected").click()
    page.locator("#sil-status").get_by_text("Rejected 1 silhouette").wait_for()
    assert json.loads(index.read_text())["items"][0]["accepted"] is False
    assert page.locator("#sil-gallery").get_by_text(f"REJECTED {first}").count() == 1


SITE_TAB_BUTTONS = ("Add backgrounds", "Estimate plates from clip", "Remove plate", "Extract silhouettes",
                    "Harvest silhouettes", "Reject selected", "Accept again", "Build dataset")  # fmt: skip
TRAIN_TAB_BUTTONS = ("Start training", "Stop")


def test_every_tab_renders(page, shots):
    """Each tab shows its own steps and buttons (and not another tab's), drawn on the page."""
    page.get_by_role("tab", name="1. Site and dataset").click()
    page.get_by_role("button", name="Build dataset").wait_for()
    for step in ("Step 1: plates, the empty scene", "Step 2: people (actor silhouettes)", "Step 3: build the dataset"):
        assert page.get_by_role("heading", name=step).is_visible()
    assert all(page.get_by_role("button", name=b, exact=True).is_visible() for b in SITE_TAB_BUTTONS)
    assert not page.get_by_role("button", name="Start training").is_visible()
    page.screenshot(path=str(shots / "site.png"), full_page=True)
    assert varied_pixels(page.locator("#site-dd").screenshot()) > 0.01  # the site picker is drawn

    page.get_by_role("tab", name="2. Train").click()
    page.get_by_role("button", name="Start training").wait_for()
    assert page.get_by_text("Training runs on:").is_visible()
    assert all(page.get_by_role("button", name=b, exact=True).is_visible() for b in TRAIN_TAB_BUTTONS)
    assert page.get_by_label("Model preset").is_visible() and page.get_by_label("Batch size").is_visible()
    assert not page.get_by_role("button", name="Build dataset").is_visible()
    page.screenshot(path=str(shots / "train.png"), full_page=True)
    assert varied_pixels(page.get_by_role("button", name="Start training").screenshot()) > 0.01


def varied_pixels(png: bytes) -> float:
    """The share of pixels that differ from the image's most common colour: 0 for a blank area."""
    from io import BytesIO

    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(BytesIO(png)).convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    return 1.0 - counts.max() / len(pixels)
