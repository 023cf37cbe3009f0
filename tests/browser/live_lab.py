"""Opening a live lab in the browser: connected, and its first frame drawn."""

import re

from playwright.sync_api import Page, expect

FRAME_TIMEOUT_MS = 20_000


def open_live_lab(page: Page, base: str, slug: str, hash_: str = "", *, loss: str) -> None:
    """Opens /labs/<slug><hash_> and waits until the server's first frame filled in `loss`."""
    page.goto(f"{base}/labs/{slug}{hash_}")
    expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    # The server's first frame (step 0) fills in the losses.
    expect(page.locator(loss)).to_have_text(re.compile(r"^\d"), timeout=FRAME_TIMEOUT_MS)


def shown_number(page: Page, selector: str) -> float:
    """A number the page shows, thousands separators dropped."""
    return float(page.locator(selector).text_content().replace(",", ""))
