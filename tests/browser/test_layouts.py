"""Every lab on a phone and on a projector, and presentation mode: what a class sees."""

import re

import pytest
from playwright.sync_api import Page, expect

from app.labs import all_labs, find_lab

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
# A 1920×1080 projector with the system at 150 %: 1280×720 CSS pixels.
PROJECTOR = {"viewport": {"width": 1280, "height": 720}, "device_scale_factor": 1.5}
READY = [lab.slug for lab in all_labs() if lab.ready]


@pytest.fixture
def sized(browser):
    """A page of the given size (PHONE, PROJECTOR); JS errors collected as in `page`."""
    contexts = []

    def open_page(size: dict) -> Page:
        context = browser.new_context(**size)
        contexts.append(context)
        pg = context.new_page()
        pg.js_errors = []
        pg.on("pageerror", lambda e: pg.js_errors.append(str(e)))
        return pg

    yield open_page
    for context in contexts:
        context.close()


def _open_mlp(sized, live_server: str, size: dict) -> Page:
    page = sized(size)
    page.goto(f"{live_server}/labs/mlp")
    expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    return page


def _in_view(page: Page, selector: str) -> bool:
    """Whether the element is wholly inside the viewport, without scrolling."""
    return page.evaluate(
        """(selector) => {
          const r = document.querySelector(selector).getBoundingClientRect();
          return r.width > 0 && r.top >= 0 && r.left >= 0
            && r.bottom <= innerHeight && r.right <= innerWidth;
        }""",
        selector,
    )


@pytest.mark.parametrize("slug", READY)
def test_no_lab_is_wider_than_a_phone(sized, live_server: str, slug: str, screenshot_dir) -> None:
    page = sized(PHONE)
    page.goto(f"{live_server}/labs/{slug}")
    page.wait_for_timeout(2000)  # the server's first answers are drawn
    page.screenshot(path=str(screenshot_dir / f"phone-{slug}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    if slug == "backprop":  # its chain scrolls sideways rather than shrink to 7 px type
        assert page.locator("#bp-diagram .bp-node-name").first.bounding_box()["height"] >= 12
    assert page.js_errors == []


def test_on_a_phone_the_mlp_output_is_right_under_its_controls(sized, live_server: str) -> None:
    page = _open_mlp(sized, live_server, PHONE)
    bar = page.locator(".mlp-bar").bounding_box()
    boundary = page.locator("#output-heatmap").bounding_box()
    network = page.locator("#network").bounding_box()
    assert boundary["y"] < network["y"]
    assert boundary["y"] - (bar["y"] + bar["height"]) < 120  # only the panel's title between


def test_on_a_projector_the_mlp_boundary_and_nav_fit(
    sized, live_server: str, screenshot_dir
) -> None:
    page = _open_mlp(sized, live_server, PROJECTOR)
    page.screenshot(path=str(screenshot_dir / "projector-mlp.png"))
    assert _in_view(page, "#output-heatmap")
    assert _in_view(page, "#play")
    links = page.locator(".topbar nav a")
    tops = {round(links.nth(i).bounding_box()["y"]) for i in range(links.count())}
    assert len(tops) == 1  # the labs on one row
    assert page.js_errors == []


def test_presentation_mode_fits_play_network_and_boundary(
    sized, live_server: str, screenshot_dir
) -> None:
    page = _open_mlp(sized, live_server, PROJECTOR)
    normal = float(page.evaluate("getComputedStyle(document.documentElement).fontSize")[:-2])

    page.keyboard.press("p")

    expect(page).to_have_url(re.compile("present=1"))
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.locator("#regularization")).to_be_hidden()  # a secondary control
    large = float(page.evaluate("getComputedStyle(document.documentElement).fontSize")[:-2])
    assert large > normal
    page.wait_for_timeout(300)  # the network redraws at its larger scale
    assert page.locator("#network .net-neuron").first.bounding_box()["width"] > 40
    for selector in ("#play", "#network .net-output", "#output-heatmap"):
        assert _in_view(page, selector), selector
    page.screenshot(path=str(screenshot_dir / "projector-mlp-present.png"))

    page.keyboard.press("d")  # the dark theme, and a link that keeps both
    expect(page).to_have_url(re.compile("present=1&theme=dark"))
    page.goto("about:blank")
    page.goto(f"{live_server}/labs/mlp#present=1&theme=dark")
    expect(page.locator("html.present[data-theme=dark]")).to_be_attached()
    expect(page.locator(".topbar")).to_be_hidden()
    assert page.js_errors == []


@pytest.mark.parametrize("slug", READY)
def test_every_lab_says_what_to_look_at(page: Page, live_server: str, slug: str) -> None:
    page.goto(f"{live_server}/labs/{slug}")
    expect(page.locator("h1")).to_have_count(1)
    lede = page.locator(".lab-head .lede").text_content().strip()
    assert len(lede.split()) >= 12  # a sentence or two: what to look at, what to try


HIDDEN = """(name) => [...document.querySelectorAll(`[data-control="${name}"], [data-prop="${name}"]`)]
  .every((el) => el.closest(".control-hidden") && el.offsetParent === null)"""


@pytest.mark.parametrize("slug", READY)
def test_an_instructor_hides_controls_and_the_link_keeps_them_hidden(
    browser, page: Page, live_server: str, slug: str
) -> None:
    page.goto(f"{live_server}/labs/{slug}")
    page.get_by_role("button", name="Customise").click()
    toggles = page.locator(".hide-toggle")
    expect(toggles.first).to_be_attached()  # every lab's controls are found
    shown = page.locator(".hide-toggle:visible")
    # Some labs show their controls only once a picture is chosen: those hide through the link.
    toggle = shown.first if shown.count() else toggles.first
    name = toggle.get_attribute("data-hide")
    if shown.count():
        toggle.click()
        expect(page).to_have_url(re.compile(rf"hide={name}(&|$)"))
        page.get_by_role("button", name="Done").click()
        expect(page.locator(".hide-toggle")).to_have_count(0)
        assert page.evaluate(HIDDEN, name)

    other = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    other.goto(f"{live_server}/labs/{slug}#hide={name}")
    other.wait_for_function(HIDDEN, arg=name)
    expect(other.locator(".control-hidden").first).to_be_attached()
    other.context.close()
    assert page.js_errors == []


@pytest.mark.parametrize("lab", [lab for lab in all_labs() if lab.ready], ids=lambda lab: lab.slug)
def test_every_lab_lists_its_keys_and_skips_to_its_controls(
    page: Page, live_server: str, lab
) -> None:
    page.goto(f"{live_server}/labs/{lab.slug}")
    keys = page.locator(".lab-tools .keys")
    for key, what in ([("Space", "play")] if lab.session else []) + [
        ("P", "present"),
        ("D", "dark"),
    ]:
        expect(keys.locator("kbd", has_text=re.compile(rf"^{key}$"))).to_have_count(1)
        expect(keys).to_contain_text(what)
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#lab")).to_be_focused()
    page.keyboard.press("Tab")  # the next stop is inside the lab
    assert page.evaluate("document.getElementById('lab').contains(document.activeElement)")


# What a class must see of each lab on a projector in presentation mode: its run button, the
# controls of the lesson and the main picture.
PRESENTED = {
    "neurons": ["#play", "#learning-rate", "#fit", "#diagram"],
    "descent": ["#gd-contour"],
    "mlp": ["#play", "#network .net-output", "#output-heatmap"],
    "backprop": ["#bp-diagram", "#bp-forward", "#bp-backward"],
    "convolution": ["#input-view canvas", "#kernels .kernel", "#maps canvas"],
    "rnn": ["#play", "#unrolled"],
    "cnn": ["#train", "#race"],
}

# The labs whose drawings follow the theme: their Plotly charts on the page's background, their
# diagrams' shapes filled with it (white text on a white node is unreadable).
THEMED = ["neurons", "descent", "backprop", "convolution"]
DARK_DRAWINGS = """() => {
  const bg = getComputedStyle(document.documentElement).getPropertyValue("--bg").trim();
  const plots = [...document.querySelectorAll("#lab .js-plotly-plot")].filter((p) => p._fullLayout);
  const shapes = [...document.querySelectorAll("#lab svg:not(.main-svg) :is(circle, rect)")];
  return plots.length > 0 && plots.every((p) => p._fullLayout.paper_bgcolor === bg)
    && shapes.every((s) => getComputedStyle(s).fill !== "rgb(255, 255, 255)");
}"""

ONE_ROW = {"neurons": ["#play", "#learning-rate"], "mlp": ["#play", "#learning-rate"]}


@pytest.mark.parametrize("slug", READY)
def test_the_key_presents_every_lab_on_one_screen(sized, live_server: str, slug: str) -> None:
    page = sized(PROJECTOR)
    page.goto(f"{live_server}/labs/{slug}")
    if find_lab(slug).session:  # a live lab draws once its socket is up
        expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    expect(page.locator("#customise")).to_be_enabled()  # the lab's script is running
    views = PRESENTED.get(slug, [])
    for selector in views:
        expect(page.locator(selector).first).to_be_visible(timeout=20_000)

    page.keyboard.press("p")

    expect(page).to_have_url(re.compile(r"[#&]present=1"))
    expect(page.locator(".topbar")).to_be_hidden()
    page.wait_for_timeout(300)  # the drawings take their larger size
    for selector in views:
        assert _in_view(page, selector), selector
    if slug in ONE_ROW:  # the run button and the learning rate side by side, not wrapped
        tops = [page.locator(selector).bounding_box()["y"] for selector in ONE_ROW[slug]]
        assert max(tops) - min(tops) < 40, tops
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    if slug in THEMED:
        page.keyboard.press("d")
        expect(page).to_have_url(re.compile(r"present=1&theme=dark"))
        page.wait_for_function(DARK_DRAWINGS, timeout=20_000)
    assert page.js_errors == []
