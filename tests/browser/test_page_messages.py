"""What a student reads when a value is refused, and what a copied link then carries."""

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_a_refused_kernel_weight_names_its_cell_and_stays_out_of_the_link(
    page: Page, live_server: str
) -> None:
    page.goto(f"{live_server}/labs/convolution")
    expect(page.locator("#maps canvas").first).to_be_visible(timeout=20_000)
    expect(page).to_have_url(re.compile("kernels=identity;sobel_x;sobel_y"))
    cell = page.get_by_label("Kernel 1 row 1 column 2")

    cell.fill("1e9")
    cell.press("Tab")

    banner = page.locator("#error-text")
    expect(banner).to_have_text(
        "Kernel 1, row 1, column 2: a weight must be a number from −1000 to 1000, not 1000000000."
    )
    expect(cell).to_have_class(re.compile("invalid"))
    assert "1000000000" not in page.url  # a copied link carries only what the server accepted
    assert "kernels=identity;sobel_x;sobel_y" in page.url

    cell.fill("2")
    cell.press("Tab")
    expect(banner).to_be_hidden()
    expect(page).to_have_url(re.compile(r"kernels=c:0,2,0,0,1,0,0,0,0;"))
    expect(cell).not_to_have_class(re.compile("invalid"))
    assert page.js_errors == []
