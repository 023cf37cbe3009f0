"""The multi-layer network lab in a real Chromium against a real server: train, edit, share."""

import io
import re

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.live_lab import FRAME_TIMEOUT_MS, open_live_lab, shown_number

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_js_errors")]

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

    page.get_by_role("button", name="❚❚ Pause").click()
    expect(page.get_by_role("button", name="Play")).to_be_visible()
    page.wait_for_timeout(300)  # a frame in flight may still land
    paused_at = page.locator("#step-count").text_content()
    page.wait_for_timeout(500)
    assert page.locator("#step-count").text_content() == paused_at
    screenshot("mlp-trained")


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
    expect(page.locator("#network path.pos, #network path.neg").first).to_be_attached(
        timeout=FRAME_TIMEOUT_MS  # two new shapes to trace first
    )
    screenshot("mlp-network-sizes")


def test_shared_link_restores_the_settings(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server, SHARED)
    page.wait_for_timeout(500)  # the server's answering state must not undo the link
    expect(page.get_by_role("button", name="circle")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#activation")).to_have_value("relu")
    expect(page.locator("output[data-for=learning_rate]")).to_have_text("0.1")
    expect(page.get_by_role("spinbutton", name="neurons in layer 1")).to_have_value("3")
    expect(page.locator("#network .net-neuron")).to_have_count(3)
    screenshot("mlp-shared-link")


def test_divergence_is_shown(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server, "#learning_rate=10&hidden=50,50,50&activation=relu")
    page.get_by_role("button", name="Play").click()
    expect(page.locator("#diverged-banner")).to_be_visible(timeout=FRAME_TIMEOUT_MS)
    expect(page.locator("#train-loss")).to_have_text("diverged")
    screenshot("mlp-diverged")


def test_a_rising_loss_warns_before_it_diverges(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server, "#learning_rate=10")
    page.get_by_role("button", name="Play").click()
    banner = page.locator("#unstable-banner")
    expect(banner).to_be_visible(timeout=FRAME_TIMEOUT_MS)
    expect(banner).to_contain_text("Reset")
    screenshot("mlp-unstable")
    page.get_by_role("button", name="❚❚ Pause").click()
    page.get_by_role("button", name="Reset").click()
    expect(banner).to_be_hidden()  # fresh weights, a fresh start


def test_links_read_both_boolean_spellings_and_name_what_they_ignore(
    live_server: str, page: Page
) -> None:
    # Older links wrote booleans as true/false; every lab now writes 1/0 and reads both.
    _open(page, live_server, "#show_test=true&lines=0&nope=1&noise=lots")
    expect(page.locator("#show-test")).to_be_checked()
    expect(page.locator("#show-lines")).not_to_be_checked()
    expect(page.locator("#error-banner")).to_contain_text("Ignored in the link: nope=1, noise=lots")
    expect(page).to_have_url(re.compile(r"show_test=1&lines=0"))


def test_regression_colours_points_by_value_and_reports_mse(
    live_server: str, page: Page, screenshot
) -> None:
    _open(page, live_server, "#problem=regression")
    # The regression data sets only, the first one chosen, the link saying so.
    expect(page.get_by_role("button", name="plane")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="multi-gaussian")).to_be_visible()
    expect(page.get_by_role("button", name="XOR")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"problem=regression&dataset=plane"))
    expect(page.locator(".legend [data-problem=regression]")).to_be_visible()
    expect(page.locator(".legend [data-problem=classification]")).to_be_hidden()
    start_loss = _loss(page)
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        f"() => parseFloat(document.getElementById('train-loss').textContent) < {start_loss / 4}",
        timeout=FRAME_TIMEOUT_MS,
    )
    expect(page.locator("#train-accuracy")).to_have_text("")  # no accuracy for a value
    page.get_by_role("button", name="❚❚ Pause").click()
    # Points carry their value's colour: many colours, not two.
    colours = page.evaluate(
        """() => {
          const c = document.querySelector('#output-heatmap .heatmap-overlay');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          const seen = new Set();
          for (let i = 0; i < d.length; i += 4) if (d[i + 3] === 255) seen.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]);
          return seen.size;
        }"""
    )
    assert colours > 50
    page.get_by_role("button", name="multi-gaussian").click()
    expect(page).to_have_url(re.compile(r"dataset=multi-gaussian"))
    page.get_by_label("Problem type").select_option("classification")
    expect(page.get_by_role("button", name="XOR")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#train-accuracy")).to_have_text(re.compile(r"% right"))
    screenshot("mlp-regression")


def test_a_link_shows_its_weight_and_a_click_sets_it(
    live_server: str, page: Page, screenshot
) -> None:
    _open(page, live_server, "#learning_rate=0.0001&speed=1")
    link = page.locator('#network .net-targets path[data-link="0,1,3"]')
    tip = page.locator("#network .net-tip")
    link.hover()
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("x₂ → neuron 4 of layer 1")
    expect(tip).to_contain_text(re.compile(r"weight -?\d\.\d{3}"))
    screenshot("mlp-weight-tip")

    link.click()
    field = page.get_by_role("textbox", name="weight x₂ → neuron 4 of layer 1")
    expect(field).to_be_focused()
    field.fill("lots")
    field.press("Enter")
    expect(field).to_have_attribute("aria-invalid", "true")  # refused here, the field stays
    field.fill("2.5")
    field.press("Enter")
    expect(field).to_be_hidden()
    # Trained one step from the weight the server got (a weight it never got would come back).
    page.get_by_role("button", name="Step").click()
    expect(page.locator("#step-count")).to_have_text("1", timeout=FRAME_TIMEOUT_MS)
    page.mouse.move(5, 5)
    link.hover()
    expect(tip).to_contain_text(re.compile(r"weight 2\.(49|50)\d"))
    wire = page.locator("#network .net-links > g:first-child path").nth(1 * 4 + 3)  # [0][1][3]
    assert wire.get_attribute("class") == "pos"


def test_hovering_a_neuron_shows_its_picture_in_the_big_heatmap(
    live_server: str, page: Page
) -> None:
    _open(page, live_server)
    page.wait_for_timeout(300)  # the first frame is drawn
    output = page.evaluate(READ_GRID)
    page.locator("#network .net-neuron").nth(1).hover()
    expect(page.locator("#heatmap-shows")).to_have_text("· neuron 2 of layer 1")
    neuron = page.evaluate(READ_GRID)
    assert neuron != output
    page.locator("#network .net-neuron").nth(4).hover()  # layer 2's first
    expect(page.locator("#heatmap-shows")).to_have_text("· neuron 1 of layer 2")
    assert page.evaluate(READ_GRID) not in (output, neuron)
    page.get_by_role("button", name="feature x₁²").hover()
    expect(page.locator("#heatmap-shows")).to_have_text("· feature x₁²")
    page.mouse.move(5, 5)  # off the network: the output again
    expect(page.locator("#heatmap-shows")).to_have_text("")
    assert page.evaluate(READ_GRID) == output


def _chart_pixels(page: Page) -> np.ndarray:
    """The loss chart's pixels as it is on screen, `(n, 3)` RGB."""
    png = page.locator("#loss-chart").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)


def test_the_loss_chart_follows_the_dark_theme(live_server: str, page: Page, screenshot) -> None:
    _open(page, live_server)
    page.get_by_role("button", name="Step").click()
    page.wait_for_timeout(500)  # the chart redraws at most every 150 ms

    def dark_share() -> float:
        return float(np.mean(_chart_pixels(page).max(axis=1) < 60))

    assert dark_share() < 0.1  # ink on white
    page.keyboard.press("d")
    expect(page.locator("html[data-theme=dark]")).to_be_attached()
    page.wait_for_timeout(300)
    assert dark_share() > 0.8  # light ink on the page's dark background
    corner = _chart_pixels(page)[0].tolist()
    assert corner == pytest.approx([13, 17, 23], abs=3)  # --bg: #0d1117
    screenshot("mlp-dark")


def test_a_lesson_link_opens_with_its_controls_hidden(live_server: str, page: Page) -> None:
    _open(page, live_server, "#hide=noise,batch_size,regularization")
    for hidden in ("#noise", "#batch-size", "#regularization", "label[for=noise]"):
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.locator("#train-ratio")).to_be_visible()
    page.get_by_role("button", name="Customise").click()
    expect(page.locator("#noise")).to_be_visible()  # shown faded, with a Show button
    page.get_by_role("button", name="Show noise").click()
    page.get_by_role("button", name="Hide speed").click()
    expect(page).to_have_url(re.compile(r"hide=regularization,speed,batch_size(&|$)"))
    page.get_by_role("button", name="Done").click()
    expect(page.locator("#speed")).to_be_hidden()
    expect(page.locator("#noise")).to_be_visible()
