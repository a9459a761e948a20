"""An instructor, with only a browser and the Secure Base document, creates the assignment:
uploads the document, checks what was read, fixes the proposed rubric by keyboard, creates
the assignment and opens it. The pages fit a 390 px screen."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import LiveServer
from tests.browser.test_review_flow import as_person

DOCUMENT = Path(__file__).parents[2] / "services" / "demo" / "secure-base-assignment.txt"


async def _fits(page: Any, width: int = 390) -> None:
    # After a form post the next page may still be arriving: measure the loaded document.
    await page.wait_for_load_state("load")
    overflow = await page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, f"{page.url} is {overflow}px wide at {width}px"


async def test_an_instructor_uploads_the_secure_base_document_fixes_the_rubric_and_opens_it(
    browser: Any, live_server: LiveServer
) -> None:
    base = live_server.base_url
    context, page, errors = await as_person(browser, live_server, "ivo-instructor")
    await page.set_viewport_size({"width": 390, "height": 844})
    # A cohort of its own (for the next term), so the demo cohort stays as other tests see it.
    await page.goto(f"{base}/")
    await page.get_by_label("Name").fill("PSY 612 · Spring 2027")
    await page.get_by_label("Address").fill("psy-612-spring")
    await page.get_by_role("button", name="Create cohort").click()
    await expect(page.get_by_role("heading", name="PSY 612 · Spring 2027")).to_be_visible()
    await page.get_by_role("link", name="New assignment from a document").click()
    await _fits(page)

    # A broken document first: the problem is shown at its line, and can be fixed in place.
    await page.get_by_label("Assignment document").set_input_files(
        {"name": "broken.txt", "mimeType": "text/plain", "buffer": b"References\n\nTitle\n"}
    )
    await page.get_by_role("button", name="Read the document").click()
    await expect(page.get_by_role("link", name="Line 1").first).to_be_visible()
    await _fits(page)

    await page.get_by_label("Assignment document").set_input_files(str(DOCUMENT))
    await page.get_by_role("button", name="Read the document").click()
    preview = page.get_by_role("region", name=re.compile("What was read"))
    await expect(preview).to_contain_text("5 questions")
    await expect(preview).to_contain_text("10 references")
    await expect(preview).to_contain_text("judged against Mikulincer & Shaver (2019)")
    await expect(page.get_by_label("Source", exact=True)).to_have_value("1")
    await _fits(page)

    # Fix the rubric by keyboard: rename component 1, move component 4 up, drop component 3.
    label = page.get_by_label("Component 1: label")
    await label.fill("The therapist as a secure base")
    await page.get_by_role("button", name="Move component 4 up").focus()
    await page.keyboard.press("Enter")
    moved = page.get_by_role("button", name="Move component 3 up")
    await expect(moved).to_be_focused()  # focus follows the moved component
    await expect(page.get_by_label("Component 3: label")).to_have_value(
        re.compile("^Discuss how a therapist's own attachment pattern")
    )
    await expect(page.get_by_label("Component 1: label")).to_have_value(
        "The therapist as a secure base"
    )  # the rename survived the re-render
    await page.get_by_role("button", name="Remove component 4").focus()
    await page.keyboard.press("Enter")
    await page.get_by_label("Component 3: comes from question").select_option("5")
    await page.get_by_role("button", name="Create assignment").focus()
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("heading", name="Stance rubric", level=1)).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text("created as a draft")
    await expect(page.get_by_label("Component 1: label")).to_have_value(
        "The therapist as a secure base"
    )
    assert await page.get_by_label(re.compile(r"Component \d: label")).count() == 3
    await _fits(page)

    # Open it for writing and discussing.
    assignment = re.search(r"/assignments/(\d+)/rubric", page.url)
    assert assignment is not None
    await page.goto(f"{base}/assignments/{assignment.group(1)}/review-dashboard")
    await page.get_by_role("button", name=re.compile(r"\bopen\b", re.IGNORECASE)).first.click()
    # The dashboard asks first, listing what the move does.
    await page.get_by_role("button", name="Yes, move to open").click()
    await page.goto(f"{base}/assignments/{assignment.group(1)}")
    await expect(page.locator(".badge").first).to_have_text("Open")
    await page.goto(f"{base}/assignments/{assignment.group(1)}/questions")
    await expect(page.locator("#questions-locked")).to_contain_text("The questions are fixed")
    await context.close()
    assert [e for e in errors if "status of 422" not in e] == []
