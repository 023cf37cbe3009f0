"""A classroom room in two real Chromium pages: the instructor's (on a projector) and a student's
(on a phone). The student's boundary follows the instructor's, then their fork goes its own way."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.live_lab import FRAME_TIMEOUT_MS, shown_number

pytestmark = pytest.mark.browser

READ_GRID = """() => {
  const canvas = document.querySelector('#output-heatmap .heatmap-grid');
  return Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data);
}"""
STEP = "#step-count"
INERT = "() => document.getElementById('learning-rate').closest('[inert]') !== null"


@pytest.fixture
def pages(browser):
    """The instructor's page at 1280×720 @1.5 (a projector) and a student's at 390×844 (a phone)."""
    projector = browser.new_context(
        viewport={"width": 1280, "height": 720}, device_scale_factor=1.5
    )
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    teacher, student = projector.new_page(), phone.new_page()
    errors: list[str] = []
    for pg in (teacher, student):
        pg.on("pageerror", lambda e: errors.append(str(e)))
    yield teacher, student, errors
    projector.close()
    phone.close()


def steps(page: Page) -> int:
    return int(shown_number(page, STEP))


def train(page: Page, watched: Page, past: int) -> None:
    """Plays `page`'s run until `watched` shows a step past `past`, then pauses it."""
    page.locator("#play").click()
    watched.wait_for_function(
        f"() => parseInt(document.querySelector('{STEP}').textContent.replace(/,/g, '')) > {past}",
        timeout=FRAME_TIMEOUT_MS,
    )
    page.locator("#play").click()
    settle(watched)


def settle(page: Page) -> None:
    """Waits until the step shown stops changing (a paused run's last frame is drawn)."""
    page.wait_for_function(
        """() => new Promise((done) => {
          const at = document.querySelector('#step-count').textContent;
          setTimeout(() => done(document.querySelector('#step-count').textContent === at), 600);
        })""",
        timeout=FRAME_TIMEOUT_MS,
    )


def test_a_student_follows_the_instructor_then_forks(live_server: str, pages, screenshot_dir):
    teacher, student, errors = pages
    teacher.goto(f"{live_server}/labs/mlp#dataset=circle&hidden=4&learning_rate=0.03")
    expect(teacher.locator("#connection")).to_have_attribute("data-status", "connected")
    teacher.get_by_role("button", name="Open a room").click()
    code = teacher.locator("#room-code")
    expect(code).to_have_text(re.compile(r"^[A-Z2-9]{6}$"))
    expect(teacher.locator("#room-qr")).to_be_visible()
    expect(teacher.locator("#train-loss")).to_have_text(
        re.compile(r"^\d"), timeout=FRAME_TIMEOUT_MS
    )

    student.goto(f"{live_server}/join")
    student.get_by_label("Room code").fill(code.text_content().lower())
    student.get_by_role("button", name="Join").click()
    student.wait_for_url(re.compile(r"/labs/mlp\?room="))
    assert errors == []
    expect(student.locator("#room-mode")).to_have_text(re.compile("Following"))
    expect(teacher.locator("#room-followers")).to_have_text("1")
    expect(student.locator("#train-loss")).to_have_text(
        re.compile(r"^\d"), timeout=FRAME_TIMEOUT_MS
    )
    # Following: the controls are the instructor's, not the student's.
    assert student.evaluate(INERT)

    # The instructor trains; the student's boundary changes with it and ends where it ends.
    before = student.evaluate(READ_GRID)
    train(teacher, watched=student, past=500)
    settle(teacher)
    assert steps(student) == steps(teacher)
    followed = student.evaluate(READ_GRID)
    assert followed != before
    assert followed == teacher.evaluate(READ_GRID)
    teacher.locator("#classroom").scroll_into_view_if_needed()
    teacher.screenshot(path=str(screenshot_dir / "classroom-instructor-projector.png"))
    student.screenshot(path=str(screenshot_dir / "classroom-student-following-phone.png"))

    # The fork starts from the instructor's network at that step, then is the student's own run.
    student.get_by_role("button", name="Fork: try it myself").click()
    expect(student.locator("#room-mode")).to_have_text("Your own run")
    settle(student)
    assert steps(student) == steps(teacher)
    assert student.evaluate(READ_GRID) == followed
    assert not student.evaluate(INERT)
    student.locator("#learning-rate").fill("8")  # a much larger rate than the instructor's
    train(student, watched=student, past=steps(teacher) + 500)
    assert student.evaluate(READ_GRID) != teacher.evaluate(READ_GRID)
    student.locator("#classroom").scroll_into_view_if_needed()
    student.screenshot(path=str(screenshot_dir / "classroom-student-forked-phone.png"))

    # Re-sync: following the instructor again, from where their run is.
    student.get_by_role("button", name="Re-sync").click()
    expect(student.locator("#room-mode")).to_have_text(re.compile("Following"))
    settle(student)
    assert student.evaluate(READ_GRID) == teacher.evaluate(READ_GRID)
    assert errors == []


def test_fork_before_the_room_socket_opens_is_told_not_lost(live_server: str, page: Page):
    code = page.request.post(f"{live_server}/api/rooms", data={"lab": "mlp"}).json()["code"]
    page.route_web_socket(re.compile(r"/ws/rooms/"), lambda ws: ws.close())  # it never opens
    page.goto(f"{live_server}/labs/mlp?room={code}")
    page.get_by_role("button", name="Fork: try it myself").click()
    expect(page.locator("#error-banner")).to_contain_text("press Fork again in a moment")
    expect(page.locator("#room-mode")).to_have_text(re.compile("Following"))
