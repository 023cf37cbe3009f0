"""The single-neurons lab in a real Chromium against a real server: train, switch models, XOR."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.live_lab import FRAME_TIMEOUT_MS, open_live_lab, shown_number

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_js_errors")]

WEIGHT = "#diagram [data-weight='0,0']"


def _open(page: Page, base: str, hash_: str = "") -> None:
    open_live_lab(page, base, "neurons", hash_, loss="#loss")


def _loss(page: Page) -> float:
    return shown_number(page, "#loss")


def test_linear_regression_trains_the_line(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server, "#model=linear&learning_rate=0.01&speed=1&seed=4")
    start_loss, start_weight = _loss(page), page.locator(WEIGHT).text_content()
    screenshot("neurons-linear-untrained")
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        f"() => parseFloat(document.getElementById('loss').textContent) < {start_loss * 0.5}",
        timeout=FRAME_TIMEOUT_MS,
    )
    assert page.locator(WEIGHT).text_content() != start_weight
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Play")).to_be_visible()
    page.wait_for_timeout(600)  # the trail settles on the surface
    screenshot("neurons-linear-trained")


def test_logistic_on_xor_shows_the_note_and_the_mlp_link(
    live_server: str, page: Page, screenshot
) -> None:
    _open(page, live_server, "#model=logistic&dataset=linear&learning_rate=0.1&speed=20")
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        "() => parseInt(document.getElementById('accuracy').textContent) >= 95",
        timeout=FRAME_TIMEOUT_MS,
    )
    screenshot("neurons-logistic-separable")
    expect(page.locator("#xor-note")).to_be_hidden()

    page.get_by_role("button", name="XOR").click()
    expect(page.locator("#xor-note")).to_be_visible()
    link = page.get_by_role("link", name=re.compile("multi-layer network"))
    expect(link).to_have_attribute("href", re.compile(r"^/labs/mlp#dataset=xor&noise=.*&seed="))
    expect(page).to_have_url(re.compile(r"dataset=xor"))
    expect(page.get_by_role("button", name="Pause")).to_be_visible()  # new data, still playing
    page.wait_for_function(
        "() => parseInt(document.getElementById('step-count').textContent.replace(/,/g, '')) > 1500",
        timeout=FRAME_TIMEOUT_MS,
    )
    assert _loss(page) > 0.6  # stalls near ln 2
    screenshot("neurons-logistic-xor")


def test_softmax_on_iris(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server, "#model=softmax&dataset=iris&learning_rate=0.3&speed=20")
    expect(page.locator("#diagram [data-bias]")).to_have_count(3)
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        "() => parseInt(document.getElementById('accuracy').textContent) >= 90",
        timeout=FRAME_TIMEOUT_MS,
    )
    page.get_by_role("button", name="Pause").click()
    page.get_by_label("Horizontal feature").select_option("sepal_length")
    expect(page).to_have_url(re.compile(r"iris_features=sepal_length,petal_width"))
    page.wait_for_timeout(500)
    screenshot("neurons-softmax-iris")
    page.get_by_role("button", name="three blobs").click()
    page.get_by_role("button", name="Play").click()
    page.wait_for_timeout(1500)
    screenshot("neurons-softmax-three")


def test_first_visit_without_a_link_plays(live_server: str, page: Page) -> None:
    # The server's first data (version 0) arrives after the page sent its config: it must be kept.
    _open(page, live_server)
    expect(page.locator(WEIGHT)).to_have_text(re.compile(r"^w1 [+−]\d"))  # the neuron is drawn
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        "() => parseInt(document.getElementById('step-count').textContent.replace(/,/g, '')) > 0",
        timeout=FRAME_TIMEOUT_MS,
    )
    assert page.evaluate("document.getElementById('loss-chart').data[0].x.length") > 1


def test_diverged_weights_are_written_short(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server, "#model=linear&learning_rate=10&speed=1")
    page.get_by_role("button", name="Play").click()
    expect(page.locator("#diverged-banner")).to_be_visible(timeout=FRAME_TIMEOUT_MS)
    page.wait_for_timeout(300)
    label = page.locator(WEIGHT).text_content()
    assert re.fullmatch(r"w1 [+−](\d{1,4}\.\d\d|\d\.\de\d+)", label), label  # not +131913303562649
    screenshot("neurons-diverged")
