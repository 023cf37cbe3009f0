"""The recurrent-network lab in a real Chromium against a real server: play, look inside the cells,
scrub through time, refused text, a shared link, and the three screen sizes."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.live_lab import FRAME_TIMEOUT_MS, shown_number
from tests.browser.test_layouts import PHONE, PROJECTOR

pytestmark = pytest.mark.browser

# The states heatmap's pixels and the gradient plot's values, to see them change.
HEATMAP = "document.getElementById('state-heatmap').toDataURL()"
GRADIENTS = "JSON.stringify(document.getElementById('gradient-chart').data[0].y)"
GATE_STRIPS = "#step-detail canvas[data-array$='_gate']"
# A network of a shape new to the server is traced before its first frame: seconds on a busy CPU.
FIRST_FRAME_MS = 60_000


def _open(page: Page, base: str, hash_: str = "") -> None:
    """Opens the lab and waits until the server's first frame drew the unrolled network."""
    page.goto(f"{base}/labs/rnn{hash_}")
    expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    expect(page.locator("#unrolled .cell-step").first).to_be_visible(timeout=FIRST_FRAME_MS)


def _wait_step_above(page: Page, step: int) -> None:
    page.wait_for_function(
        "(n) => parseInt(document.getElementById('step-count').textContent.replace(/,/g, '')) > n",
        arg=step,
        timeout=FRAME_TIMEOUT_MS,
    )


def test_play_scrub_and_switch_the_cell(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server)
    # An LSTM: its cell state and its four gates at the chosen step.
    expect(page.locator(GATE_STRIPS)).to_have_count(3)  # input, forget, output
    expect(page.locator("#step-detail canvas[data-array='c']")).to_have_count(1)
    heatmap, gradients = page.evaluate(HEATMAP), page.evaluate(GRADIENTS)

    page.get_by_role("button", name="Play").click()
    _wait_step_above(page, 20)
    page.wait_for_function(f"(before) => {GRADIENTS} !== before", arg=gradients)
    page.wait_for_function(f"(before) => {HEATMAP} !== before", arg=heatmap)
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Play")).to_be_visible()
    assert shown_number(page, "#train-loss") < shown_number(page, "#val-loss") * 10
    # The steps the server trained a frame: the chosen 10, or fewer "of 10" on a busy machine.
    expect(page.locator("#steps-per-frame")).to_have_text(re.compile(r"^(10|[1-9] of 10)$"))
    page.wait_for_function("document.getElementById('loss-chart').data[0].x.length >= 2")

    # The time scrubber picks the step the cells, the heatmap and the link show.
    page.locator("#time").fill("30")
    expect(page.locator("#time-value")).to_have_text("t = 30")
    expect(page.locator("#unrolled [aria-current=step]")).to_have_attribute("data-t", "30")
    expect(page.locator("#step-detail .step-values")).to_contain_text("t = 30")
    expect(page).to_have_url(re.compile(r"[#&]t=30(&|$)"))
    page.locator("#unrolled .cell-step[data-t='31']").click()
    expect(page.locator("#time-value")).to_have_text("t = 31")
    screenshot("rnn-lstm-trained")

    page.get_by_role("button", name="SimpleRNN").click()
    expect(page).to_have_url(re.compile(r"cell=simple_rnn"))
    # The restarted network's first frame: no gates, no cell state, step 0.
    expect(page.locator("#step-detail canvas[data-array='h']")).to_have_count(1)
    expect(page.locator(GATE_STRIPS)).to_have_count(0, timeout=FIRST_FRAME_MS)
    expect(page.locator("#step-detail canvas[data-array='c']")).to_have_count(0)
    expect(page.locator("#step-count")).to_have_text("0")
    expect(page.locator("#unrolled .shared")).to_contain_text("SimpleRNN cell")
    assert page.js_errors == []


def test_a_text_too_long_is_refused_and_the_servers_errors_shown(
    live_server: str, page: Page
) -> None:
    # No frame needed: the page checks the length itself, the server the rest.
    page.goto(f"{live_server}/labs/rnn#task=text&length=20")
    expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    area = page.get_by_label("Text to learn")
    expect(area).to_have_value(re.compile(r"^Twinkle"))
    area.fill("é" * 4500)  # 9000 bytes of UTF-8 in 4500 characters
    expect(page.locator("#text-bytes")).to_have_text("9,000 / 8,192 bytes — too long")
    page.get_by_role("button", name="Train on this text").click()
    banner = page.locator("#error-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("9,000 bytes of UTF-8; at most 8,192")
    expect(area).to_have_class(re.compile("field-error"))
    page.wait_for_timeout(300)
    assert "text=" not in page.url  # nothing was sent nor kept
    assert page.locator("#connection").get_attribute("data-status") == "connected"

    # The server checks the rest: its error names the field.
    page.locator("#error-close").click()
    area.fill("ab")
    page.get_by_role("button", name="Train on this text").click()
    expect(banner).to_contain_text("text", timeout=FRAME_TIMEOUT_MS)
    expect(banner).to_contain_text("10")
    expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    assert page.js_errors == []


# The shape (padded) of the first test's networks, whose traces the server keeps: no wait for one.
SHARED = "#cell=simple_rnn&units=30&period=12&noise=0.3&learning_rate=0.003&speed=5&t=12"


def test_a_shared_link_restores_the_experiment(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server, SHARED)
    expect(page.get_by_role("button", name="SimpleRNN")).to_have_attribute("aria-pressed", "true")
    for field, shown in [("units", "30"), ("period", "12"), ("noise", "0.3")]:
        expect(page.locator(f"output[data-for={field}]")).to_have_text(shown)
    expect(page.locator("output[data-for=learning_rate]")).to_have_text("0.003")
    expect(page.locator("#speed")).to_have_value("5")
    expect(page.locator("#time-value")).to_have_text("t = 12")
    # The server runs what the link says: a SimpleRNN of 30 units, its 30 rows of states.
    expect(page.locator("#unrolled .shared")).to_contain_text("SimpleRNN cell, 30 units")
    assert page.evaluate("document.getElementById('state-heatmap').height") == 30
    expect(page.locator("#unrolled [aria-current=step]")).to_have_attribute("data-t", "12")
    expect(page.locator(GATE_STRIPS)).to_have_count(0)
    screenshot("rnn-shared-link")

    # Gates appear for an LSTM, and the heatmap can show them.
    page.get_by_role("button", name="LSTM").click()
    expect(page.locator(GATE_STRIPS)).to_have_count(3, timeout=FIRST_FRAME_MS)
    page.locator("#heatmap-of").select_option("forget_gate")
    expect(page).to_have_url(re.compile(r"show=forget_gate"))
    expect(page.locator("#state-legend")).to_contain_text("forget gate f")
    assert page.js_errors == []


@pytest.mark.parametrize("size", [PHONE, PROJECTOR], ids=["phone", "projector"])
def test_layouts(browser, live_server: str, size: dict, screenshot_dir) -> None:
    context = browser.new_context(**size)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        # On the projector, the memory curve's panel too (it fills only while playing).
        page.goto(f"{live_server}/labs/rnn" + ("#memory_curve=1" if size is PROJECTOR else ""))
        expect(page.locator("#unrolled .cell-step").first).to_be_visible(timeout=FIRST_FRAME_MS)
        width = size["viewport"]["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        bar = page.locator(".rnn-bar").bounding_box()
        unrolled = page.locator("#unrolled").bounding_box()
        # The network right under the controls (on a phone the settings come after it).
        assert unrolled["y"] - (bar["y"] + bar["height"]) < 90
        assert unrolled["x"] + unrolled["width"] <= width
        name = "phone" if size is PHONE else "projector"
        page.screenshot(path=str(screenshot_dir / f"rnn-{name}.png"), full_page=True)
        assert errors == []
    finally:
        context.close()
