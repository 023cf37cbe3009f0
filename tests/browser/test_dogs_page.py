"""The dog-photo lab in Chromium: photos through the file picker, the top-5 bars, the Grad-CAM and
occlusion overlays where the evidence is, a wrong preprocessing changing the answer, bad files,
and the page at laptop, projector and phone sizes."""

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from app.settings import Settings
from tests.app.test_dogs_api import EVIDENCE, dog_evidence_png, photo_bytes, ready

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
PROJECTOR = {"viewport": {"width": 1280, "height": 720}, "device_scale_factor": 1.5}
READY_MS = 180_000  # the server builds the model after the live labs' warm-ups
TRACE_MS = 60_000  # a layer's first Grad-CAM or feature maps trace it: seconds on a busy machine


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict:
    """Files to upload: a photo the model sees as a Golden Retriever (evidence in the top right),
    one it does not see as a dog, and a text file named like a photo."""
    # live_server runs in this process: the same settings share its build of the model.
    build = ready(Settings())
    folder = tmp_path_factory.mktemp("photos")
    files = {
        "dog": (folder / "golden.png", dog_evidence_png(build.result().model)),
        "disc": (folder / "disc.jpg", photo_bytes("JPEG", (1155, 866))),
        "text": (folder / "notes.jpg", b"shopping list: eggs, flour"),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {name: str(path) for name, (path, _) in files.items()}


def upload(page: Page, *paths: str) -> None:
    page.set_input_files("#file-input", list(paths))
    for card in page.locator(".photo-card").all():
        expect(card).not_to_have_attribute("data-state", "working", timeout=READY_MS)


def overlay_pixels(page: Page, canvas: str) -> np.ndarray:
    """RGB pixels (side, side, 3) of an overlay canvas."""
    data = page.evaluate(
        """(id) => {
            const c = document.getElementById(id);
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height);
            return {side: c.width, px: Array.from(d.data)};
        }""",
        canvas,
    )
    return np.array(data["px"], np.uint8).reshape(data["side"], data["side"], 4)[..., :3]


def warm_share(pixels: np.ndarray, rows: slice, cols: slice) -> float:
    """The share of pixels in a region the overlay coloured warm (the photo is drawn in grey)."""
    region = pixels[rows, cols].astype(int)
    return float(np.mean(region[..., 0] - region[..., 2] > 60))


def in_canvas(s: slice, side: int) -> slice:
    return slice(s.start * side // 224, s.stop * side // 224)


def test_a_dog_photo_gets_its_breeds_and_where_the_model_looked(
    page: Page, live_server: str, photos: dict, screenshot
) -> None:
    page.goto(f"{live_server}/labs/dogs")
    upload(page, photos["dog"])

    card = page.locator(".photo-card").first
    expect(card.locator(".verdict")).to_contain_text("A dog")
    bars = card.locator(".top-bars li")
    expect(bars).to_have_count(5)
    expect(bars.first).to_contain_text("Golden Retriever")
    width = card.locator(".top-bars .bar").first.evaluate("b => b.style.width")
    assert float(width.rstrip("%")) > 80  # the bar's length is the probability

    expect(page.locator("#gradcam-caption")).to_contain_text("Grad-CAM of Golden Retriever")
    expect(page.locator("#occlusion-caption")).to_contain_text("lowers Golden Retriever")
    expect(page.locator("#steps .tensor-step")).to_have_count(4)
    expect(page.locator("#steps .tensor-step").last).to_contain_text("(224, 224, 3) float32")
    expect(page.locator("#feature-maps canvas")).to_have_count(16)
    for canvas in ("gradcam", "occlusion"):
        pixels = overlay_pixels(page, canvas)
        side = pixels.shape[0]
        rows, cols = (in_canvas(s, side) for s in EVIDENCE)
        away = slice(side * 3 // 4, side)  # the bottom-left corner holds no evidence
        assert warm_share(pixels, rows, cols) > 0.5, canvas
        assert warm_share(pixels, away, slice(0, side // 4)) < 0.1, canvas
    screenshot("dogs-laptop")
    assert page.js_errors == []


def test_a_wrong_preprocessing_changes_the_top_5(
    page: Page, live_server: str, photos: dict, screenshot
) -> None:
    page.goto(f"{live_server}/labs/dogs")
    upload(page, photos["dog"])
    steps = page.locator("#steps .tensor-step")
    expect(steps).to_have_count(4)
    correct = page.locator("#correct-bars").inner_text()

    page.get_by_role("button", name="BGR").click()
    expect(steps).to_have_count(5)
    expect(steps.nth(3)).to_contain_text("swap to BGR")
    page.get_by_role("button", name="0–255 unscaled").click()
    expect(steps.last).to_contain_text("scaling skipped")
    expect(page.locator("#variant-title")).to_have_text("0–255 unscaled")
    expect(page.locator("#variant")).to_be_visible()
    variant = page.locator("#variant-bars")
    expect(variant.locator("li")).to_have_count(5)
    assert variant.inner_text() != correct
    assert page.locator("#correct-bars").inner_text() == correct  # the right answer, beside
    expect(page.locator("#variant-bars li.changed").first).to_be_visible()
    assert "preprocessing=unscaled" in page.url
    screenshot("dogs-unscaled")
    assert page.js_errors == []


def test_the_link_keeps_the_layers_and_the_preprocessing(
    page: Page, live_server: str, photos: dict
) -> None:
    page.goto(f"{live_server}/labs/dogs#preprocessing=bgr&layer=block6d_add&features=block2b_add")
    upload(page, photos["dog"])

    expect(page.get_by_role("button", name="BGR")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#gradcam-caption")).to_contain_text(
        "at block6d_add, 7×7", timeout=TRACE_MS
    )
    expect(page.locator("#feature-shape")).to_contain_text(
        "block2b_add: output (1, 56, 56, 24)", timeout=TRACE_MS
    )
    expect(page.locator("#cam-layer")).to_have_value("block6d_add")

    page.select_option("#cam-layer", "block3b_add")
    expect(page.locator("#gradcam-caption")).to_contain_text(
        "at block3b_add, 28×28", timeout=TRACE_MS
    )
    assert "layer=block3b_add" in page.url
    assert page.js_errors == []


def test_a_photo_that_is_not_a_dog_and_a_file_that_is_no_photo(
    page: Page, live_server: str, photos: dict
) -> None:
    page.goto(f"{live_server}/labs/dogs")
    upload(page, photos["disc"], photos["text"])

    disc = page.locator(".photo-card", has_text="disc.jpg")
    expect(disc.locator(".verdict")).to_contain_text("This does not look like a dog")
    expect(disc.locator(".top-bars li")).to_have_count(5)
    text = page.locator(".photo-card", has_text="notes.jpg")
    expect(text).to_have_attribute("data-state", "error")
    expect(text.locator(".photo-status")).to_contain_text("not a known image format")
    expect(page.locator("#error-banner")).to_contain_text("notes.jpg")
    assert page.js_errors == []


@pytest.mark.parametrize(("name", "size"), [("phone", PHONE), ("projector", PROJECTOR)])
def test_on_a_phone_and_a_projector(
    browser, live_server: str, photos: dict, screenshot_dir, name: str, size: dict
) -> None:
    context = browser.new_context(**size)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{live_server}/labs/dogs")
        upload(page, photos["dog"], photos["disc"])
        expect(page.locator("#gradcam-caption")).to_contain_text("Grad-CAM of")
        expect(page.locator("#feature-maps canvas")).to_have_count(16)
        page.wait_for_timeout(300)  # the last drawings land
        page.screenshot(path=str(screenshot_dir / f"dogs-{name}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= size["viewport"]["width"]
        overlay = page.locator("#gradcam").bounding_box()
        assert overlay["width"] > 140  # big enough to see where it looked
        assert errors == []
    finally:
        context.close()
