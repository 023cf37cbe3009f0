"""The system Chromium driven by Playwright (the server is `live_server` from tests/conftest.py)."""

from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def chromium():
    """The browser, its pages under their Content-Security-Policy (tests/browser/test_csp.py)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"browser tests need Debian's chromium at {CHROMIUM} (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class BypassingBrowser:
    """`chromium` for the pages' own tests: its contexts bypass the Content-Security-Policy, since
    Playwright's `wait_for_function` evaluates its predicate as a string in the page, which the
    policy (no eval) forbids."""

    def __init__(self, chromium):
        self.chromium = chromium

    def new_context(self, **options):
        return self.chromium.new_context(bypass_csp=True, **options)


@pytest.fixture(scope="session")
def browser(chromium) -> BypassingBrowser:
    return BypassingBrowser(chromium)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.js_errors = errors
    yield pg
    context.close()


@pytest.fixture
def no_js_errors(page):
    """Fails a test whose page raised a JavaScript error (`pytest.mark.usefixtures`)."""
    yield
    assert page.js_errors == []


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def screenshot(page, screenshot_dir):
    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
