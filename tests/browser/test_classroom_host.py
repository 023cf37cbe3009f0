"""The instructor's side of a classroom room in real Chromium pages: the Classroom panel by the
training bar, a room opened mid-run (the run goes on), a reload (the room, its code and QR stay),
and one student's run projected to the class."""

import json
import re
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from tests.browser.live_lab import FRAME_TIMEOUT_MS
from tests.browser.test_classroom_page import settle, steps, train

pytestmark = pytest.mark.browser

QR_SHOWN = "() => { const qr = document.getElementById('room-qr'); return qr.complete && qr.naturalWidth > 0; }"
# Instructor screens: a laptop, a projector-sized screen at 1.5, a phone.
SCREENS = {
    "laptop": ({"width": 1400, "height": 900}, 1),
    "projector": ({"width": 1920, "height": 1080}, 1.5),
    "phone": ({"width": 390, "height": 844}, 2),
}


def open_page(browser, screen: str) -> Page:
    viewport, scale = SCREENS[screen]
    page = browser.new_context(viewport=viewport, device_scale_factor=scale).new_page()
    page.js_errors = []
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))
    return page


def facts(base: str, code: str) -> dict:
    return json.load(urllib.request.urlopen(f"{base}/api/rooms/{code}", timeout=30))


@pytest.mark.parametrize("screen", list(SCREENS))
def test_the_classroom_sits_by_the_training_bar(live_server, browser, screen, screenshot_dir):
    page = open_page(browser, screen)
    page.goto(f"{live_server}/labs/mlp")
    expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    # No room: only a button beside Copy link, nothing between the bar and the lab's panels.
    expect(page.locator("#classroom")).to_be_hidden()
    opener = page.locator(".lab-tools").get_by_role("button", name="Open a room")
    expect(opener).to_be_in_viewport()
    page.screenshot(path=str(screenshot_dir / f"classroom-closed-{screen}.png"))
    opener.click()
    expect(page.locator("#room-code")).to_have_text(re.compile(r"^[A-Z2-9]{6}$"))
    page.wait_for_function(QR_SHOWN)
    expect(opener).to_be_hidden()
    bar = page.locator(".mlp-bar").bounding_box()
    panel = page.locator("#classroom").bounding_box()
    columns = page.locator(".mlp-cols").bounding_box()
    assert bar["y"] < panel["y"] < columns["y"]  # under the bar, above the lab's panels
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= SCREENS[screen][0]["width"]
    page.screenshot(path=str(screenshot_dir / f"classroom-open-{screen}.png"), full_page=True)
    assert page.js_errors == []
    page.context.close()


def test_opening_a_room_keeps_the_run_and_a_reload_keeps_the_room(live_server, browser):
    teacher = open_page(browser, "laptop")
    teacher.goto(f"{live_server}/labs/mlp#dataset=circle&hidden=3")
    expect(teacher.locator("#connection")).to_have_attribute("data-status", "connected")
    train(teacher, watched=teacher, past=300)
    trained = steps(teacher)
    teacher.get_by_role("button", name="Open a room").click()
    code = teacher.locator("#room-code")
    expect(code).to_have_text(re.compile(r"^[A-Z2-9]{6}$"))
    room = code.text_content()
    settle(teacher)
    assert steps(teacher) == trained  # not a new run from step 0
    teacher.wait_for_function(QR_SHOWN)
    student = open_page(browser, "phone")
    student.goto(f"{live_server}/labs/mlp?room={room}")
    expect(student.locator("#step-count")).to_have_text(f"{trained:,}", timeout=FRAME_TIMEOUT_MS)

    teacher.reload()
    expect(teacher.locator("#room-code")).to_have_text(room)
    teacher.wait_for_function(QR_SHOWN)  # the code and the QR are there again
    # The student is counted again: only the instructor's session (hosting again) counts them.
    expect(teacher.locator("#room-followers")).to_have_text("1")
    assert facts(live_server, room)["instructor"] is True
    assert teacher.js_errors == [] and student.js_errors == []
    teacher.context.close()
    student.context.close()


def test_the_instructor_projects_a_students_run(live_server, browser, screenshot_dir):
    teacher, student = open_page(browser, "laptop"), open_page(browser, "phone")
    teacher.goto(f"{live_server}/labs/mlp#dataset=circle&hidden=3&learning_rate=0.03")
    expect(teacher.locator("#connection")).to_have_attribute("data-status", "connected")
    teacher.get_by_role("button", name="Open a room").click()
    expect(teacher.locator("#room-code")).to_have_text(re.compile(r"^[A-Z2-9]{6}$"))
    room = teacher.locator("#room-code").text_content()
    student.goto(f"{live_server}/labs/mlp?room={room}")
    expect(student.locator("#room-mode")).to_have_text(re.compile("Following"))
    expect(student.locator("#room-number")).to_have_text(re.compile("student 1"))  # counted in
    student.get_by_role("button", name="Fork: try it myself").click()
    expect(student.locator("#room-mode")).to_have_text("Your own run")
    student.locator("#learning-rate").fill("1")
    train(student, watched=student, past=700)
    theirs = steps(student)

    expect(teacher.locator("#room-project")).to_be_enabled()
    teacher.get_by_role("button", name="Project their run").click()
    expect(teacher.locator("#room-projected")).to_have_text("The class sees student 1's run.")
    expect(student.locator("#room-on-projector")).to_be_visible()
    expect(teacher.locator("#step-count")).to_have_text(f"{theirs:,}", timeout=FRAME_TIMEOUT_MS)
    teacher.screenshot(path=str(screenshot_dir / "classroom-projecting-laptop.png"))

    teacher.get_by_role("button", name="Back to my run").click()
    expect(teacher.locator("#room-projected")).to_have_text("")
    expect(teacher.locator("#step-count")).to_have_text("0", timeout=FRAME_TIMEOUT_MS)
    expect(student.locator("#room-on-projector")).to_be_hidden()
    assert teacher.js_errors == [] and student.js_errors == []
    teacher.context.close()
    student.context.close()
