"""The backpropagation lab in Chromium: step through both passes with the buttons, read the page."""

import pytest
from playwright.sync_api import Page, expect

from models import backprop as bp

pytestmark = pytest.mark.browser

COURSE = {"x": 1.0, "y": 1.0, "w": [0.5, -1.0, 2.0]}
HASH = "#x=1&y=1&w=0.5,-1,2&activation=sigmoid&loss=cross_entropy&lr=0.5"


def number(text: str) -> float:
    """A number as the page prints it: typographic minus, maybe after a label ("L2′ 0.2273")."""
    return float(text.split()[-1].replace("\u2212", "-"))


def shown(page: Page, key: str) -> str:
    return page.locator(f'#bp-diagram [data-value="{key}"]').text_content()


def cell(page: Page, param: str, column: str) -> str:
    return page.locator(
        f'#bp-grad-table tr[data-param="{param}"] td[data-col="{column}"]'
    ).text_content()


def open_lab(page: Page, live_server: str, hash_: str = HASH) -> None:
    page.goto(f"{live_server}/labs/backprop{hash_}")
    expect(page.locator('#bp-grad-table tr[data-param="w1"]')).to_be_visible()


def test_step_through_forward_then_backward(page: Page, live_server: str, screenshot) -> None:
    expected = bp.backprop(**COURSE)
    grads = {g["param"]: g for g in expected["gradients"]}
    open_lab(page, live_server)
    forward = page.get_by_role("button", name="Forward step")
    backward = page.get_by_role("button", name="Backward step")

    assert shown(page, "L1") == "?" and backward.is_disabled()
    for key in ("L1", "L2", "L3", "loss"):
        forward.click()
        assert number(shown(page, key)) == pytest.approx(expected["forward"][key], rel=1e-3)
        assert page.locator("#bp-formula").text_content().startswith(f"{key} = ")
    assert forward.is_disabled() and backward.is_enabled()

    backward.click()
    assert number(shown(page, "dloss")) == pytest.approx(expected["loss_derivative"], rel=1e-3)
    reused = {3: None, 2: "loss′·L3′", 1: "loss′·L3′·w3·L2′"}
    for i in (3, 2, 1):
        backward.click()
        assert number(shown(page, f"dL{i}")) == pytest.approx(
            expected["layers"][i - 1]["dL"], rel=1e-3
        )
        backward.click()
        assert number(shown(page, f"delta{i}")) == pytest.approx(
            expected["deltas"][i - 1], rel=1e-3
        )
        assert cell(page, f"w{i}", "chain") == "—"  # not derived yet
        backward.click()
        formula = page.locator("#bp-formula")
        assert formula.text_content().startswith(f"∂loss/∂w{i} = δ{i}·")
        if reused[i]:  # the product computed once, earlier, is highlighted where it is reused
            assert formula.locator("mark").text_content() == reused[i]
        assert number(cell(page, f"w{i}", "chain")) == pytest.approx(
            grads[f"w{i}"]["chain"], rel=1e-9
        )
        assert cell(page, f"w{i}", "agree") == "✓"
    assert backward.is_disabled()

    for param, g in grads.items():
        assert number(cell(page, param, "tape")) == pytest.approx(g["tape"], rel=1e-9)
        assert number(cell(page, param, "finite_difference")) == pytest.approx(g["tape"], abs=1e-6)
    page.get_by_role("button", name="Undo step").click()
    assert cell(page, "w1", "chain") == "—"
    screenshot("backprop-lab")
    assert page.js_errors == []


def test_gradient_step_lowers_the_loss_and_the_link_keeps_the_weights(
    page: Page, live_server: str
) -> None:
    run = bp.train(**COURSE, lr=0.5, steps=1)
    open_lab(page, live_server)

    page.get_by_role("button", name="One step").click()

    expect(page.locator("#bp-loss-after")).not_to_have_text("—")
    assert number(page.locator("#bp-loss-before").text_content()) == pytest.approx(
        run["loss"][0], rel=1e-5
    )
    assert number(page.locator("#bp-loss-after").text_content()) == pytest.approx(
        run["loss"][1], rel=1e-5
    )
    expect(page.locator("#bp-w1")).to_have_value(str(float(f"{run['w'][1][0]:.6g}")))
    # After a step everything is revealed, for the new weights.
    expect(page.locator('#bp-diagram [data-value="loss"]')).to_have_text(f"{run['loss'][1]:.4g}")

    link = page.url
    assert "w=" in link and str(run["w"][1][0]) in link
    page.goto("about:blank")
    page.goto(link)
    expect(page.locator("#bp-w1")).to_have_value(str(float(f"{run['w'][1][0]:.6g}")))
    assert page.js_errors == []


def test_bad_input_shows_the_servers_message(page: Page, live_server: str) -> None:
    open_lab(page, live_server)

    page.locator("#bp-x").fill("5000")

    expect(page.locator("#error-banner")).to_contain_text(
        "x must be a finite number in [-1000, 1000]. Received: x=5000"
    )


def test_vanishing_gradient_mode_stacks_ten_layers(
    page: Page, live_server: str, screenshot
) -> None:
    open_lab(page, live_server)

    page.get_by_role("checkbox", name="vanishing gradient").check()

    expect(page.locator('#bp-grad-table tr[data-param="w10"]')).to_be_visible()
    expect(page.locator("#bp-depth-chart .point")).to_have_count(10)
    page.get_by_role("button", name="Show all").click()
    first, last = (number(cell(page, p, "tape")) for p in ("w1", "w10"))
    assert abs(first) < 1e-3 * abs(last)  # the gradient vanishes on its way back
    assert "deep=1" in page.url and page.url.count(",") == 9
    screenshot("backprop-deep")
    assert page.js_errors == []


def test_a_rejected_learning_rate_stays_out_of_the_link(page: Page, live_server: str) -> None:
    open_lab(page, live_server)

    page.locator("#bp-lr").fill("1000")
    page.get_by_role("button", name="One step").click()

    expect(page.locator("#error-banner")).to_contain_text("lr")
    assert "lr=1000" not in page.url and "lr=0.5" in page.url
    page.locator("#bp-lr").fill("2")
    page.get_by_role("button", name="One step").click()
    expect(page.locator("#bp-loss-after")).not_to_have_text("—")
    assert "lr=2" in page.url
