"""The gradient-descent lab in Chromium: rates side by side, a diverged run, sliders, bad links."""

import pytest
from playwright.sync_api import Page, expect

from models import descent as gd

pytestmark = pytest.mark.browser


def open_lab(page: Page, live_server: str, hash_: str = "") -> None:
    page.goto(f"{live_server}/labs/descent{hash_}")
    # A fresh server compiles a surface's first run while it warms its labs up: seconds.
    expect(page.locator(".gd-rate .gd-status").first).to_contain_text("final loss", timeout=30_000)


def loss_curve(page: Page, run: int) -> list:
    return page.evaluate(f"document.getElementById('gd-loss-chart').data[{run}].y")


def test_default_rates_show_slow_good_and_a_diverged_run(
    page: Page, live_server: str, screenshot
) -> None:
    open_lab(page, live_server)

    rows = page.locator(".gd-rate")
    expect(rows).to_have_count(4)
    expect(rows.nth(3).locator(".gd-status")).to_have_text("✕ diverged at step 75")
    expect(rows.nth(3)).to_have_class("gd-rate is-diverged")
    expect(rows.nth(3)).to_contain_text("1.05× crit")
    # The diverged marker and its label, on the map and on the loss chart.
    expect(page.locator("#gd-loss-chart").get_by_text("diverged at step 75")).to_be_visible()
    expect(page.locator("#gd-contour").get_by_text("diverged at step 75")).to_be_visible()
    expect(page.locator("#gd-critical")).to_contain_text("2/λmax = 2")
    params = gd.check_surface("quadratic")
    expected = gd.descend("quadratic", params, gd.SURFACES["quadratic"].start, [0.2], 100)[0]
    assert loss_curve(page, 1) == pytest.approx(expected["loss"], rel=1e-9)
    assert "lrs=" in page.url and "surface=quadratic" in page.url
    screenshot("descent-lab")
    assert page.js_errors == []


def test_moving_a_rate_slider_changes_its_loss_curve(page: Page, live_server: str) -> None:
    open_lab(page, live_server)
    before = loss_curve(page, 0)

    page.get_by_label("learning rate 1 (log scale)").fill("-0.5")  # η = 10^−0.5 ≈ 0.316

    expect(page.locator(".gd-rate").first).to_contain_text("η = 0.316")
    page.wait_for_function(
        f"document.getElementById('gd-loss-chart').data[0].y[100] < {before[100] / 100}"
    )
    assert "lrs=0.3162" in page.url
    # Push it past the cliff: that run now diverges too.
    page.get_by_label("learning rate 1 (log scale)").fill("0.5")
    expect(page.locator(".gd-rate").first.locator(".gd-status")).to_contain_text("diverged at step")
    assert page.js_errors == []


def test_step_slider_spells_out_the_update_with_numbers(page: Page, live_server: str) -> None:
    open_lab(page, live_server, "#sel=1")
    page.locator("#gd-step").fill("3")

    rule = page.locator("#gd-rule")
    expect(rule).to_contain_text("w₄ = w₃ − η·∇loss(w₃) = (")
    expect(rule).to_contain_text("− 0.2·(")
    assert "step=3" in page.url and "sel=1" in page.url


def test_other_surfaces_optimizers_and_3d(page: Page, live_server: str, screenshot) -> None:
    open_lab(page, live_server, "#surface=nonconvex&optimizer=adam&view3d=1&log=0")

    expect(page.locator("#gd-critical")).to_contain_text("≈ 2/λmax")
    if page.evaluate("Boolean(document.createElement('canvas').getContext('webgl'))"):
        expect(page.locator("#gd-contour .gl-container, #gd-contour canvas").first).to_be_attached()
    else:
        expect(page.locator("#gd-3d-note")).to_contain_text("needs WebGL")
    screenshot("descent-nonconvex-3d")
    page.locator("#gd-surface").select_option("linear_regression")
    expect(page.locator("#gd-critical")).to_contain_text("2/λmax = 0.6786", timeout=30_000)
    expect(page.locator(".gd-rate").nth(3)).to_contain_text("1.05× crit")
    assert page.js_errors == []


def test_without_webgl_a_3d_link_draws_the_2d_map_and_says_why(
    page: Page, live_server: str
) -> None:
    # As on a browser with no GPU: every WebGL context request fails.
    page.add_init_script(
        """(() => {
          const get = HTMLCanvasElement.prototype.getContext;
          HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {
            return /webgl/.test(kind) ? null : get.call(this, kind, ...rest);
          };
        })()"""
    )
    open_lab(page, live_server, "#surface=nonconvex&view3d=1")

    expect(page.locator("#gd-3d-note")).to_have_text(
        "3-D view needs WebGL, which this browser does not offer: showing the 2-D map."
    )
    expect(page.locator("#gd-3d")).to_be_disabled()
    expect(page.locator("#gd-3d")).not_to_be_checked()
    assert page.evaluate("document.getElementById('gd-contour').data[0].type") == "contour"
    assert page.js_errors == []


def test_a_clicked_start_point_reruns_from_there(page: Page, live_server: str) -> None:
    open_lab(page, live_server)
    x, y = page.evaluate(
        """() => {
          const el = document.getElementById("gd-contour");
          const { xaxis, yaxis } = el._fullLayout;
          const box = el.querySelector(".main-svg").getBoundingClientRect();
          return [box.left + xaxis._offset + xaxis.c2p(2), box.top + yaxis._offset + yaxis.c2p(2)];
        }"""
    )

    page.mouse.click(x, y)

    page.wait_for_function("!location.hash.includes('start=-3.2,2.4')")
    start = page.evaluate("new URLSearchParams(location.hash.slice(1)).get('start')")
    assert [float(v) for v in start.split(",")] == pytest.approx([2.0, 2.0], abs=0.03)
    page.wait_for_function(
        "document.getElementById('gd-contour').data.at(-1).x[0] > 1.9"
    )  # the start ring moved


def test_an_absurd_link_shows_the_servers_message(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/labs/descent#lrs=1e9,0.1&start=0,0")

    expect(page.locator("#error-banner")).to_contain_text(
        "learning_rates[0] must be a finite number in [1e-06, 1000]. "
        "Received: learning_rates[0]=1000000000"
    )
    assert page.js_errors == []
