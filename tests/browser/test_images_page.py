"""The images lab in Chromium: load a file, build a pipeline, watch every step's tensor change."""

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
# A 1920×1080 projector with the system at 150 %: 1280×720 CSS pixels.
PROJECTOR = {"viewport": {"width": 1280, "height": 720}, "device_scale_factor": 1.5}


def _open(page: Page, base: str, state: str, stages: int) -> None:
    """Opens the lab at `state` and waits until its `stages` cards show their pictures."""
    page.goto(f"{base}/labs/images#{state}")
    _wait_for_cards(page, stages)


def _wait_for_cards(page: Page, stages: int) -> None:
    page.wait_for_function(
        "(n) => document.querySelectorAll('#stages .stage-card').length === n && "
        "[...document.querySelectorAll('#stages .stage-card')].every("
        "  (card) => card.querySelector('img.picture')?.complete && "
        "  card.querySelector('img.picture').naturalWidth > 0)",
        arg=stages,
    )


def _pixels(page: Page, selector: str) -> np.ndarray:
    """The RGB pixels of the <img> or <canvas> `selector`, as shown (natural size for an img)."""
    data = page.evaluate(
        """(selector) => {
          const el = document.querySelector(selector);
          const w = el.naturalWidth ?? el.width, h = el.naturalHeight ?? el.height;
          const c = Object.assign(document.createElement('canvas'), {width: w, height: h});
          const ctx = c.getContext('2d');
          ctx.drawImage(el, 0, 0);
          return {w, h, px: Array.from(ctx.getImageData(0, 0, w, h).data)};
        }""",
        selector,
    )
    return np.array(data["px"], np.uint8).reshape(data["h"], data["w"], 4)[..., :3]


def _wait_until(page: Page, check, what: str, tries: int = 60) -> None:
    """Polls `check()` until it is true, or fails saying `what`."""
    for _ in range(tries):
        if check():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"{what} did not happen")


def _range(card) -> tuple[float, float]:
    low, high = card.locator(".stage-range").inner_text().replace("−", "-").split(" … ")
    return float(low), float(high)


def _png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


def test_an_upload_through_the_file_picker_is_described_and_decoded(
    page: Page, live_server: str, tmp_path: Path, screenshot
) -> None:
    _open(page, live_server, "sample=photo&steps=", 1)
    y, x = np.mgrid[0:80, 0:120]
    rgb = np.stack([x * 2, y * 3, np.full_like(x, 90)], -1).astype(np.uint8)
    page.set_input_files("#file", str(_png(tmp_path / "ramp.png", rgb)))

    expect(page.locator("#sample")).to_have_value("upload")
    expect(page.locator("#facts .facts-shape")).to_have_text("(80, 120, 3)")
    expect(page.locator("#facts")).to_contain_text("PNG")
    expect(page.locator("#facts")).to_contain_text("(1, 80, 120, 3)")  # the batch shape
    expect(page.locator("#stage-0 .stage-shape-text")).to_have_text("(80, 120, 3)")
    expect(page.locator("#stage-0 .stage-range")).to_have_text("0 … 238")
    assert re.search(r"image=[0-9a-f]{32}", page.url)
    expect(page.locator("#snippet")).to_contain_text('tf.io.read_file("image.png")')
    expect(page.locator("#sample-download")).to_be_hidden()  # the user has the file
    # The card's text changes at once; its picture only once the new image has decoded.
    page.wait_for_function(
        "() => document.querySelector('#stage-0 img.picture').naturalWidth === 120"
    )
    shown = _pixels(page, "#stage-0 img.picture")
    assert shown.shape == (80, 120, 3) and np.abs(shown.astype(int) - rgb).max() <= 1
    screenshot("images-upload")

    # Dropped on the load panel: an animated GIF, its first frame decoded, its frames counted.
    frames = [Image.new("RGB", (40, 30), (60 * i, 90, 200)) for i in range(3)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    page.evaluate(
        """(bytes) => {
          const files = new DataTransfer();
          files.items.add(new File([new Uint8Array(bytes)], "a.gif", {type: "image/gif"}));
          document.getElementById("load-panel").dispatchEvent(
            new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true}));
        }""",
        list(gif.getvalue()),
    )
    expect(page.locator("#facts")).to_contain_text("3 frames")
    expect(page.locator("#facts .facts-shape")).to_have_text("(30, 40, 3)")
    expect(page.locator("#camera")).to_have_attribute("capture", "environment")  # a phone's camera
    assert page.js_errors == []


def test_a_brightness_slider_changes_the_preview_and_the_histogram(
    page: Page, live_server: str, screenshot
) -> None:
    _open(page, live_server, "sample=photo&steps=brightness@delta:0", 2)
    card = page.locator("#stage-1")
    expect(card.locator(".stage-call")).to_have_text("tf.image.adjust_brightness(x, delta=0.0)")
    picture = "#stage-1 img.picture"
    histogram = "#stage-1 canvas.histogram-canvas"
    before, drawn = _pixels(page, picture), page.eval_on_selector(histogram, "c => c.toDataURL()")
    mean = float(card.locator("tr:has(th.channel-R) td").nth(2).inner_text())

    # Dragged, the step's own preview follows the slider (report="last")…
    slider = card.locator("input[type=range][data-prop=delta]")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2, steps=5)
    expect(page.locator("#pipeline-time")).to_contain_text("Live preview of step 2")
    page.mouse.up()
    # …and released, the whole pipeline is run again and written into the link.
    expect(page.locator("#pipeline-time")).to_contain_text("2 stages")
    delta = float(re.search(r"delta=([-\d.]+)", card.locator(".stage-call").inner_text())[1])
    assert 0.2 < delta < 0.6
    expect(page).to_have_url(re.compile(rf"steps=brightness@delta:{delta}"))
    brighter = before.mean() + 30
    _wait_until(page, lambda: _pixels(page, picture).mean() > brighter, "a brighter preview")
    assert page.eval_on_selector(histogram, "c => c.toDataURL()") != drawn
    assert float(card.locator("tr:has(th.channel-R) td").nth(2).inner_text()) > mean + 30

    # The keyboard moves it a notch at a time.
    slider.focus()
    page.keyboard.press("Home")
    expect(card.locator(".stage-call")).to_have_text("tf.image.adjust_brightness(x, delta=-1.0)")
    expect(card.locator(".stage-range")).to_have_text("0 … 0")  # uint8: clipped to black
    screenshot("images-brightness")
    assert page.js_errors == []


def test_a_normalize_step_makes_the_range_minus_one_to_one(
    page: Page, live_server: str, screenshot
) -> None:
    _open(page, live_server, "sample=photo&steps=resize@height:64,width:96;cast", 3)
    page.select_option("#add-op", "normalize")
    page.click("#add-step")
    _wait_for_cards(page, 4)
    card = page.locator("#stage-3")
    expect(card.locator("h3")).to_have_text("4 · normalize")
    unit = re.compile(r"^0\.\d+ … (1|0\.\d+)$")  # the mode it starts with: [0, 1]
    expect(card.locator(".stage-range")).to_have_text(unit)

    page.select_option("#stage-3-mode", "symmetric")
    expect(card.locator(".stage-call")).to_have_text("x / 127.5 - 1.0")
    low, high = _range(card)
    assert -1 <= low < -0.5 and 0.9 < high <= 1
    legend = card.locator(".stage-scale .scale-legend.diverging")
    expect(legend).to_have_text(re.compile(r"−1\s*0\s*1"))
    expect(page).to_have_url(
        re.compile("steps=resize@height:64,width:96;cast;normalize@mode:symmetric")
    )
    # Drawn on a diverging scale: zero is mid-grey, so the picture is not black.
    _wait_until(page, lambda: _pixels(page, "#stage-3 img.picture").mean() > 60, "a grey picture")
    strip = page.locator("#strip figure").nth(3)
    expect(strip).to_have_attribute("data-display", "diverging")
    expect(page.locator("#snippet")).to_contain_text("x = x / 127.5 - 1.0")
    screenshot("images-normalize")
    assert page.js_errors == []


def test_a_phone_photo_is_shown_raw_and_upright(page: Page, live_server: str, screenshot) -> None:
    _open(page, live_server, "sample=phone_photo&steps=", 1)
    figures = page.locator("#orientation-figures figure img")
    expect(figures).to_have_count(2)
    page.wait_for_function(
        "[...document.querySelectorAll('#orientation-figures img')].every(i => i.naturalWidth)"
    )
    sizes = figures.evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
    assert sizes == [[384, 256], [256, 384]]  # as stored (on its side), and upright
    expect(page.locator("#exif-line")).to_contain_text("tf.io.decode_image ignores EXIF")
    expect(page.locator("#orientation-figures")).to_contain_text("tf.image.rot90(x, k=3)")
    expect(page.locator("#stage-0 .stage-notes")).to_contain_text("ignored by tf.io.decode_image")
    expect(page.locator("#facts")).to_contain_text("6: rotate 90° clockwise to display")
    expect(page.locator("#stage-0 .stage-shape-text")).to_have_text("(256, 384, 3)")

    page.check("#stage-0-apply_exif")  # the pipeline turns it upright with tf.image calls
    expect(page.locator("#stage-0 .stage-shape-text")).to_have_text("(384, 256, 3)")
    expect(page.locator("#stage-0 .stage-call")).to_contain_text("tf.image.rot90(")
    expect(page).to_have_url(re.compile("apply_exif=1"))
    screenshot("images-exif")
    assert page.js_errors == []


def _pipeline(page: Page) -> list[tuple[str, str, str]]:
    return [
        (
            card.locator("h3").inner_text(),
            card.locator(".stage-call").inner_text(),
            card.locator(".stage-shape").inner_text(),
        )
        for card in page.locator("#stages .stage-card").all()
    ]


def test_a_shared_link_reproduces_the_pipeline_and_the_batch(page: Page, live_server: str) -> None:
    _open(page, live_server, "sample=gray&steps=", 1)
    page.select_option("#stage-0-channels", "3")
    expect(page.locator("#stage-0 .stage-shape-text")).to_have_text("(256, 384, 3)")
    for op in ("resize", "hue", "batch"):
        page.select_option("#add-op", op)
        page.click("#add-step")
    _wait_for_cards(page, 4)
    page.fill("#stage-1-height", "48")
    page.press("#stage-1-height", "Tab")
    page.select_option("#stage-1-method", "nearest")
    page.click("#stage-2 button[title='Move up']")  # hue before the resize
    expect(page.locator("#stage-1 h3")).to_have_text("2 · hue")
    page.fill("#seed", "42")
    page.press("#seed", "Tab")
    page.uncheck("#aug-crop")
    expect(page.locator("#stage-2 .stage-call")).to_have_text(
        'tf.image.resize(x, (48, 224), method="nearest")'
    )
    expect(page.locator("#stages .stage-card").last).to_contain_text("(1, 48, 224, 3)")
    expect(page.locator("#aug-grid figure").first).to_contain_text("seed (42, 0)")
    expect(page.locator("#aug-grid figure").first).not_to_contain_text("crop")
    page.wait_for_timeout(400)  # the link is written once changes pause
    link = page.url
    assert "channels=3" in link and "seed=42" in link
    built = _pipeline(page)
    draws = page.locator("#aug-grid figure").first.inner_text()

    shared = page.context.new_page()
    shared.js_errors = []
    shared.on("pageerror", lambda e: shared.js_errors.append(str(e)))
    shared.goto(link)
    _wait_for_cards(shared, 4)
    expect(shared.locator("#aug-grid figure").first).to_contain_text("seed (42, 0)")
    assert _pipeline(shared) == built
    assert shared.locator("#aug-grid figure").first.inner_text() == draws
    assert shared.input_value("#sample") == "gray" and shared.input_value("#stage-2-method") == (
        "nearest"
    )
    assert page.js_errors == [] and shared.js_errors == []


def test_a_step_that_cannot_run_is_said_in_the_banner(page: Page, live_server: str) -> None:
    _open(page, live_server, "sample=gray&steps=flip_up_down", 2)
    page.select_option("#add-op", "hue")
    page.click("#add-step")
    banner = page.locator("#error-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("steps[1] (hue): tf.image.adjust_hue needs 3 (RGB) channels")
    page.click("#stage-2 button[title='Remove']")
    expect(banner).to_be_hidden()
    page.goto(f"{live_server}/labs/images#sample=photo&steps=blur;resize@height:99999")
    expect(banner).to_contain_text("Ignored in the link: blur, resize@height:99999")
    _wait_for_cards(page, 2)
    expect(page.locator("#stage-1 .stage-shape-text")).to_have_text("(224, 224, 3)")
    assert page.js_errors == []


def test_jpeg_sizes_the_png_download_and_normalizations_side_by_side(
    page: Page, live_server: str
) -> None:
    steps = "central_crop@central_fraction:0.5;jpeg_quality@jpeg_quality:10"
    _open(page, live_server, f"sample=photo&steps={steps}", 3)
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "pipeline.png"
    assert Image.open(io.BytesIO(Path(download.value.path()).read_bytes())).size == (192, 128)

    def jpeg_bytes() -> int:
        return int(page.inner_text("#stage-2 .stage-jpeg").removesuffix(" bytes").replace(",", ""))

    low = jpeg_bytes()
    page.focus("#stage-2-jpeg_quality")
    page.keyboard.press("End")  # quality 100: the file the JPEG step made grows
    expect(page.locator("#stage-2 .stage-call")).to_contain_text("jpeg_quality=100")
    assert jpeg_bytes() > 2 * low

    cards = page.locator("#norm-grid .norm-card")
    expect(cards).to_have_count(5)
    raw, unit = cards.nth(0), cards.nth(1)
    expect(raw).to_contain_text("it overshoots")
    expect(raw.locator(".ratio-bar")).to_have_class(re.compile("overshoots"))
    expect(unit.locator(".ratio-bar")).not_to_have_class(re.compile("overshoots"))
    expect(cards.nth(2).locator(".scale-legend")).to_have_class(re.compile("diverging"))
    assert page.js_errors == []


def _fits(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_the_lab_fits_a_phone_and_a_projector(browser, live_server: str, screenshot_dir) -> None:
    for name, size in (("phone", PHONE), ("projector", PROJECTOR)):
        context = browser.new_context(**size)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        _open(page, live_server, "sample=phone_photo", 5)
        expect(page.locator("#aug-grid figure")).to_have_count(8)
        assert _fits(page), name
        page.screenshot(path=str(screenshot_dir / f"images-{name}.png"), full_page=True)
        page.keyboard.press("p")  # presentation mode: larger type, no navigation
        expect(page.locator("html.present")).to_be_attached()
        expect(page.locator(".topbar")).to_be_hidden()
        page.wait_for_timeout(300)
        assert _fits(page), f"{name}, presenting"
        page.screenshot(path=str(screenshot_dir / f"images-{name}-present.png"))
        assert errors == []
        context.close()
