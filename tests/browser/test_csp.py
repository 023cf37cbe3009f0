"""Every page works under its Content-Security-Policy: no violation reported, the API docs render."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from app.labs import all_labs

pytestmark = pytest.mark.browser

READY = [lab for lab in all_labs() if lab.ready]
# Any script the page or an injected one runs after: a blocked script, style, image or socket.
WATCH_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI}`));
"""


def violations(page: Page, console: list[str]) -> list[str]:
    return [*page.evaluate("window.cspViolations"), *console]


@pytest.fixture
def watched(chromium) -> Iterator[tuple[Page, list[str]]]:
    """A page under the policy (not the other tests' `page`, which bypasses it), its violations
    and JS errors collected."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))
    console: list[str] = []
    page.on(
        "console",
        lambda m: console.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.add_init_script(WATCH_VIOLATIONS)
    yield page, console
    context.close()


@pytest.mark.parametrize("lab", READY, ids=[lab.slug for lab in READY])
def test_a_lab_page_runs_without_a_policy_violation(
    watched: tuple[Page, list[str]], live_server: str, lab
) -> None:
    page, console = watched
    page.goto(f"{live_server}/labs/{lab.slug}")
    if lab.session is not None:  # a live lab: its socket connects
        expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    if page.locator("script[src='/vendor/plotly.min.js']").count():  # its charts are drawn
        expect(page.locator(".js-plotly-plot .main-svg").first).to_be_attached(timeout=20_000)
    page.wait_for_timeout(600)  # frames drawn, lazy modules loaded (a socket never idles)
    assert violations(page, console) == []
    assert page.js_errors == []


def test_the_home_page_runs_without_a_policy_violation(
    watched: tuple[Page, list[str]], live_server: str
) -> None:
    page, console = watched
    page.goto(live_server)
    page.wait_for_load_state("networkidle")
    assert violations(page, console) == []


@pytest.mark.parametrize(
    ("path", "rendered"),
    [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")],
)
def test_the_api_docs_render_under_their_policy(
    watched: tuple[Page, list[str]], live_server: str, path: str, rendered: str
) -> None:
    page, console = watched
    page.goto(f"{live_server}{path}")
    expect(page.locator(rendered).first).to_contain_text("TensorFlow Playground", timeout=20_000)
    page.wait_for_load_state("networkidle")
    # ReDoc fetches its "powered by" logo from its CDN: blocking that is the policy's work.
    blocked = [v for v in violations(page, console) if "https://cdn.redoc.ly/" not in v]
    assert blocked == []
