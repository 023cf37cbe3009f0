"""The convolution lab in Chromium: presets, kernel edits and hovering change what is drawn."""

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

# Kernel 1 starts as the identity, so its map is the checkerboard itself until a preset changes it.
START = "/labs/convolution#sample=checkerboard&kernels=identity;sobel_y&size=64"


def _map_pixels(page, index: int) -> np.ndarray:
    """RGB pixels (height, width, 3) of output feature map `index` as drawn on its canvas."""
    data = page.evaluate(
        """(i) => {
            const c = document.querySelectorAll('#maps canvas.fmap-pixels')[i];
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height);
            return {w: c.width, h: c.height, px: Array.from(d.data)};
        }""",
        index,
    )
    return np.array(data["px"], np.uint8).reshape(data["h"], data["w"], 4)[..., :3]


def _open(page, live_server: str, url: str = START) -> None:
    page.goto(live_server + url)
    page.wait_for_function("document.querySelector('#output-shape').textContent.startsWith('(')")
    page.wait_for_function("document.querySelectorAll('#pipeline .stage').length === 7")


def _wait_for_change(page, index: int, before: np.ndarray) -> np.ndarray:
    for _ in range(50):
        page.wait_for_timeout(100)
        after = _map_pixels(page, index)
        if after.shape != before.shape or not np.array_equal(after, before):
            return after
    raise AssertionError("the feature map did not change")


def test_sobel_preset_on_checkerboard_shows_edges(page, live_server, screenshot) -> None:
    _open(page, live_server)
    identity = _map_pixels(page, 0)
    # The identity map of a checkerboard is its squares: 0 (white) and 1 (full blue).
    assert {tuple(p) for p in identity.reshape(-1, 3)} == {(255, 255, 255), (0, 114, 178)}
    page.select_option("#kernels fieldset:nth-of-type(1) select", "sobel_x")
    edges = _wait_for_change(page, 0, identity)
    blue = np.all(edges == [0, 114, 178], axis=-1)
    orange = np.all(edges == [230, 159, 0], axis=-1)
    white = np.all(edges == [255, 255, 255], axis=-1)
    # Sobel x: strong blue/orange lines on the vertical edges of the 8-px squares, white inside.
    assert blue.sum() > 100 and orange.sum() > 100
    assert white.sum() > 0.5 * edges.shape[0] * edges.shape[1]
    edge_columns = np.flatnonzero(blue[20] | orange[20])
    assert set(edge_columns % 8) <= {0, 7}
    assert "(1, 64, 64, 2)" in page.inner_text("#output-shape")
    assert "Sobel x" in page.inner_text("#maps")
    assert "kernels=sobel_x;sobel_y" in page.url
    screenshot("convolution-sobel-checkerboard")
    assert page.js_errors == []


def test_editing_a_kernel_cell_changes_the_output(page, live_server, screenshot) -> None:
    _open(page, live_server)
    before = _map_pixels(page, 1)
    cell = page.get_by_label("Kernel 2 row 2 column 2")
    cell.fill("5")
    after = _wait_for_change(page, 1, before)
    assert not np.array_equal(before, after)
    assert page.input_value("#kernels fieldset:nth-of-type(2) select") == "custom"
    assert "c:-1,-2,-1,0,5,0,1,2,1" in page.url
    cell.fill("")  # an empty cell is marked and not sent
    assert "invalid" in (cell.get_attribute("class") or "")
    page.locator("#error-banner").wait_for(state="visible")
    assert "Kernel 2: every cell needs a number." in page.inner_text("#error-banner")
    screenshot("convolution-custom-kernel")
    assert page.js_errors == []


def test_hovering_an_output_pixel_writes_out_the_sum(page, live_server, screenshot) -> None:
    _open(page, live_server, "/labs/convolution#sample=gradient&kernels=sobel_x&size=16")
    canvas = page.locator("#maps canvas.fmap-pixels").first
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    explain = page.locator("#explain")
    explain.locator(".explain-total").wait_for()
    text = explain.inner_text()
    assert "Map 1, output row 9, column 9" in text
    # A 16-px ramp from 0 to 1 has slope 1/15 per pixel; Sobel x sums to 8 × 1/15.
    total = text.split("TensorFlow:")[1].split()[0]
    assert float(total) == pytest.approx(8 / 15, abs=2e-3)
    assert "active" in page.locator("#kernels fieldset").first.get_attribute("class")
    canvas.focus()
    page.keyboard.press("ArrowLeft")
    assert "column 8" in explain.inner_text()
    screenshot("convolution-hover-explain")
    assert page.js_errors == []


def test_correlation_and_convolution_differ_for_sobel_only(page, live_server) -> None:
    _open(page, live_server, "/labs/convolution#sample=shapes&kernels=sobel_x;gaussian_blur")
    page.select_option("#compare-kernel", "1")
    page.wait_for_function("document.querySelector('#compare-verdict').textContent.length > 0")
    page.wait_for_function("document.querySelector('#kernel-given td')?.textContent === '-1'")
    assert "differ" in page.inner_text("#compare-verdict")
    page.select_option("#compare-kernel", "2")
    page.wait_for_function(
        "document.querySelector('#compare-verdict').textContent.includes('agree')"
    )
    assert page.js_errors == []


def test_pipeline_pooling_and_activation_respond(page, live_server, screenshot) -> None:
    _open(page, live_server, "/labs/convolution#sample=shapes&kernels=sobel_x;sobel_y;laplacian")
    shapes = page.locator("#pipeline .stage-shape").all_inner_texts()
    assert shapes[:4] == ["(1, 64, 64, 1)", "(1, 64, 64, 3)", "(1, 64, 64, 3)", "(1, 32, 32, 3)"]
    assert shapes[4] == "(1, 3072)"
    info = page.inner_text("#activation-info")
    assert "negative values" in info.lower() and info.endswith(" 0 after.")
    page.fill("#pool-window", "4")
    page.fill("#pool-stride", "4")
    page.locator("#pool-stride").dispatch_event("change")
    page.locator("#pool-window").dispatch_event("change")
    page.wait_for_function(
        "document.querySelectorAll('#pipeline .stage-shape')[3].textContent === '(1, 16, 16, 3)'"
    )
    assert "pool 4×4, stride 4: 16×16" in page.inner_text("#pooling")
    assert "the largest value of the window at rows 1–4" in page.inner_text("#pooling")
    page.select_option("#activation", "sigmoid")
    page.wait_for_function("document.querySelector('#pipeline .stage h3 + p') !== null")
    page.wait_for_function(
        "[...document.querySelectorAll('#pipeline .stage h3')].some(h => h.textContent === 'sigmoid')"
    )
    page.click("[data-pair='box,box']")
    # The new pair's animation, not the one still playing from the page's first pair (spiky).
    page.wait_for_function("document.querySelector('#signal-chart').data[0].name === 'f = box(τ)'")
    page.wait_for_function("Number(document.querySelector('#signal-frame').value) > 5")
    page.eval_on_selector(
        "#signal-frame", "el => { el.value = 33; el.dispatchEvent(new Event('input')); }"
    )
    assert page.inner_text("#signal-play") == "Play"  # dragging the slider pauses the animation
    # Frame 33 of 61 is just past the middle: the boxes overlap and the shaded product has area.
    drawn = page.evaluate(
        """() => { const d = document.querySelector('#signal-chart').data;
                   return {area: d[2].y.reduce((a, b) => a + b, 0), marker: d[4].y[0]}; }"""
    )
    assert drawn["area"] > 10 and 0.5 < drawn["marker"] <= 1.03
    assert page.locator("#signal-chart path.js-fill").count() >= 1
    screenshot("convolution-lower-sections")
    assert page.js_errors == []


def test_upload_an_image_and_see_its_shape(page, live_server, tmp_path, screenshot) -> None:
    _open(page, live_server)
    rgb = np.zeros((90, 120, 3), np.uint8)
    rgb[:, 60:] = (230, 159, 0)
    path = tmp_path / "photo.png"
    Image.fromarray(rgb).save(path)
    page.set_input_files("#upload", str(path))
    page.wait_for_function(
        "document.querySelector('#input-shape').textContent === '(1, 48, 64, 1)'"
    )
    assert page.input_value("#sample") == "upload"
    assert "image=" in page.url
    bad = tmp_path / "archive.png"
    bad.write_bytes(b"PK\x03\x04" + bytes(100))
    page.set_input_files("#upload", str(bad))
    page.locator("#error-banner").wait_for(state="visible")
    assert "ZIP" in page.inner_text("#error-banner")
    screenshot("convolution-upload")
    assert page.js_errors == []
