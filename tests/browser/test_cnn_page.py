"""The CNN-training lab in a browser: train on the built-in shapes, watch it learn, open a cell;
make classes of photos picked or dropped as a folder."""

import base64
import io

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

# A tiny CNN on 16×16 shapes: twenty epochs of small batches end in a few seconds.
SMALL = "#epochs=20&image_size=16&blocks=1&filters=4&batch_size=8"
CHART_POINTS = "document.getElementById('loss-chart').data?.[0]?.x.length ?? 0"
SIZES = {
    "cnn-1400": {"viewport": {"width": 1400, "height": 900}},
    "cnn-1920": {"viewport": {"width": 1280, "height": 720}, "device_scale_factor": 1.5},
    "cnn-phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}


def _train(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/labs/cnn{SMALL}")
    # What the network is fed, as soon as the server has drawn the shapes (once per process).
    expect(page.locator("#fed img")).to_have_count(8, timeout=30_000)
    page.get_by_role("button", name="▶ Train").click()
    # Paused as soon as it runs: a later pause can land after the last step of so small a job on
    # a loaded machine, which then ends "done" and offers no Resume.
    page.locator("#pause").click()
    expect(page.locator("#job-state")).to_contain_text("paused")
    page.wait_for_timeout(400)  # the chart's last throttled redraw
    first = page.evaluate(CHART_POINTS)
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#filter-grid img").first).to_be_visible()
    expect(page.locator("#job-state")).to_contain_text("scratch: done", timeout=60_000)
    page.wait_for_function(f"{CHART_POINTS} > {first}")  # the curve grew as it trained
    expect(page.locator("#progress")).to_have_attribute("value", "1")


def test_train_on_shapes_watch_it_learn_and_open_a_confusion_cell(page: Page, live_server) -> None:
    _train(page, live_server)

    expect(page.locator("#after")).to_be_visible()
    cells = page.locator("#confusion button")
    expect(cells).to_have_count(9)  # three shapes
    wrong = page.locator("#confusion button.wrong")
    (wrong.first if wrong.count() else cells.nth(1)).click()
    message = page.locator("#mistakes-message")
    if wrong.count():
        expect(page.locator("#mistakes .mistake").first).to_be_visible()
        expect(page.locator("#mistakes .mistake img")).not_to_have_count(0)
    else:
        expect(message).to_contain_text("No circle photo was taken for square")
    href = page.locator("#download-script").get_attribute("href")
    assert page.request.get(f"{live_server}{href}").text().startswith(("#", "import", '"""'))

    page.reload()  # the page finds its job again
    expect(page.locator("#job-state")).to_contain_text("scratch: done")
    expect(page.locator("#confusion button")).to_have_count(9)
    page.wait_for_function(f"{CHART_POINTS} > 0")  # the curves come back too
    assert page.js_errors == []


# A folder dropped on a class: its photos, a subfolder's too (Chromium's entries API, as a drop of
# a real folder gives it; Playwright cannot drag files from the disk).
DROP_FOLDER = """([png, index]) => {
  const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
  const photo = (name) => ({ isFile: true, isDirectory: false,
    file: (ok) => ok(new File([bytes], name, { type: "image/png" })) });
  const folder = (children) => {
    let read = false;
    return { isFile: false, isDirectory: true, createReader: () => ({
      readEntries: (ok) => { ok(read ? [] : children); read = true; } }) };
  };
  const root = folder([photo("a.png"), folder([photo("b.png"), photo("c.png")])]);
  const drop = new Event("drop", { bubbles: true, cancelable: true });
  const items = [{ webkitGetAsEntry: () => root }];
  Object.defineProperty(drop, "dataTransfer", { value: { items, files: [] } });
  document.querySelectorAll(".upload-class")[index].dispatchEvent(drop);
}"""


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_classes_of_photos_picked_several_at_once_or_dropped_as_a_folder(
    page: Page, live_server, tmp_path
) -> None:
    picked = []
    for i in range(3):
        picked.append(tmp_path / f"red{i}.png")
        picked[-1].write_bytes(_png((200 + 10 * i, 30, 30)))
    page.goto(f"{live_server}/labs/cnn#data=upload&epochs=2&image_size=16&blocks=1&filters=4")
    classes = page.locator(".upload-class")
    classes.nth(0).locator(".class-name").fill("red")
    classes.nth(0).locator("input[type=file]").set_input_files(picked)  # several at once
    expect(classes.nth(0).locator(".class-count")).to_have_text("3 photos · drop photos here")
    classes.nth(1).locator(".class-name").fill("blue")
    page.evaluate(DROP_FOLDER, [base64.b64encode(_png((30, 30, 220))).decode(), 1])
    expect(classes.nth(1).locator(".class-count")).to_have_text("3 photos · drop photos here")
    expect(page.locator("#data-summary")).to_have_text("2 classes, 6 photos: red 3, blue 3")
    expect(page.locator("#fed img")).to_have_count(6)

    page.get_by_role("button", name="▶ Train").click()
    expect(page.locator("#job-state")).to_contain_text("scratch: done", timeout=60_000)
    expect(page.locator("#confusion button")).to_have_count(4)
    assert page.js_errors == []


@pytest.mark.parametrize("name", list(SIZES))
def test_screenshots(browser, live_server, screenshot_dir, name) -> None:
    context = browser.new_context(**SIZES[name])
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))
    _train(page, live_server)
    page.locator("#confusion button").nth(1).click()
    page.wait_for_timeout(400)  # the charts' last redraw
    page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[name]["viewport"]["width"]
    assert page.js_errors == []
    context.close()
