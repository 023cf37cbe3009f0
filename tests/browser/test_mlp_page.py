"""The multi-layer network lab in a real Chromium against a real server: train, edit, share."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.live_lab import FRAME_TIMEOUT_MS, open_live_lab, shown_number

pytestmark = pytest.mark.browser

SHARED = "#dataset=circle&hidden=3&learning_rate=0.1&activation=relu"
READ_GRID = """() => {
  const canvas = document.querySelector('#output-heatmap .heatmap-grid');
  const ctx = canvas.getContext('2d');
  return Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data);
}"""


def _open(page: Page, base: str, hash_: str = "") -> None:
    open_live_lab(page, base, "mlp", hash_, loss="#train-loss")


def _loss(page: Page) -> float:
    return shown_number(page, "#train-loss")


def test_play_trains_and_pause_stops(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server)
    start_loss, start_grid = _loss(page), page.evaluate(READ_GRID)
    screenshot("mlp-untrained")

    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        f"() => parseFloat(document.getElementById('train-loss').textContent) < {start_loss * 0.6}",
        timeout=FRAME_TIMEOUT_MS,
    )
    assert page.evaluate(READ_GRID) != start_grid
    assert int(page.locator("#step-count").text_content().replace(",", "")) > 0

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Play")).to_be_visible()
    page.wait_for_timeout(300)  # a frame in flight may still land
    paused_at = page.locator("#step-count").text_content()
    page.wait_for_timeout(500)
    assert page.locator("#step-count").text_content() == paused_at
    screenshot("mlp-trained")
    assert page.js_errors == []


def test_size_controls_redraw_the_network(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server)
    neurons = page.locator("#network .net-neuron")
    expect(neurons).to_have_count(6)  # [4, 2]

    page.get_by_role("button", name="more neurons in layer 1").click()
    expect(neurons).to_have_count(7)
    page.get_by_role("button", name="fewer neurons in layer 2").click()
    expect(neurons).to_have_count(6)
    page.get_by_role("button", name="+ layer").click()
    expect(neurons).to_have_count(8)

    size = page.get_by_role("spinbutton", name="neurons in layer 1")
    size.fill("12")
    size.press("Enter")
    expect(neurons).to_have_count(8 + 1 + 2)  # 12 neurons: 8 drawn
    expect(page.locator("#network .net-more")).to_have_text("+4 more")
    expect(page).to_have_url(re.compile(r"hidden=12,1,2"))
    # The server's frame for the new network colours its links by weight.
    expect(page.locator("#network path.pos, #network path.neg").first).to_be_attached()
    screenshot("mlp-network-sizes")
    assert page.js_errors == []


def test_shared_link_restores_the_settings(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server, SHARED)
    page.wait_for_timeout(500)  # the server's answering state must not undo the link
    expect(page.get_by_role("button", name="circle")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#activation")).to_have_value("relu")
    expect(page.locator("output[data-for=learning_rate]")).to_have_text("0.1")
    expect(page.get_by_role("spinbutton", name="neurons in layer 1")).to_have_value("3")
    expect(page.locator("#network .net-neuron")).to_have_count(3)
    screenshot("mlp-shared-link")
    assert page.js_errors == []


def test_divergence_is_shown(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server, "#learning_rate=10&hidden=50,50,50&activation=relu")
    page.get_by_role("button", name="Play").click()
    expect(page.locator("#diverged-banner")).to_be_visible(timeout=FRAME_TIMEOUT_MS)
    expect(page.locator("#train-loss")).to_have_text("diverged")
    screenshot("mlp-diverged")
    assert page.js_errors == []


def test_a_rising_loss_warns_before_it_diverges(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server, "#learning_rate=10")
    page.get_by_role("button", name="Play").click()
    banner = page.locator("#unstable-banner")
    expect(banner).to_be_visible(timeout=FRAME_TIMEOUT_MS)
    expect(banner).to_contain_text("Reset")
    screenshot("mlp-unstable")
    page.get_by_role("button", name="Pause").click()
    page.get_by_role("button", name="Reset").click()
    expect(banner).to_be_hidden()  # fresh weights, a fresh start
    assert page.js_errors == []


def test_links_read_both_boolean_spellings_and_name_what_they_ignore(
    live_server: str, page: Page
) -> None:
    # Older links wrote booleans as true/false; every lab now writes 1/0 and reads both.
    _open(page, live_server, "#show_test=true&lines=0&nope=1&noise=lots")
    expect(page.locator("#show-test")).to_be_checked()
    expect(page.locator("#show-lines")).not_to_be_checked()
    expect(page.locator("#error-banner")).to_contain_text("Ignored in the link: nope=1, noise=lots")
    expect(page).to_have_url(re.compile(r"show_test=1&lines=0"))
    assert page.js_errors == []
