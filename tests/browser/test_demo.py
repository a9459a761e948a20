"""A new user opens the demo and finds the Secure Base assignment with its five questions."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import LiveServer


async def test_from_the_home_page_to_the_five_questions(page: Any, live_server: LiveServer) -> None:
    await page.goto(live_server.base_url + "/")
    await expect(page.get_by_role("heading", name="Your cohorts")).to_be_visible()
    await page.get_by_role("link", name="PSY 612 · Attachment in Psychotherapy (demo)").click()
    await page.get_by_role(
        "link", name="Reflect On The Ways You Have Been A Secure Base For Your Clients"
    ).click()

    await expect(page).to_have_url(
        f"{live_server.base_url}/assignments/{live_server.assignment_id}"
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Reflect On The Ways You Have Been A Secure Base For Your Clients"
    )
    questions = page.locator("ol.questions > li")
    await expect(questions).to_have_count(5)
    await expect(questions.nth(0)).to_contain_text(
        'Reflect on the ways you have been a "secure base"'
    )
    await expect(questions.nth(4)).to_contain_text("a therapist's own attachment pattern")
    await expect(page.get_by_text("Mikulincer & Shaver (2019)").first).to_be_visible()

    # The sample paper is there but folded away; opening it works from the keyboard.
    summary = page.get_by_text("Read the sample paper that came with this assignment")
    paper = page.get_by_text("The role of the therapist as a secure base is fundamental")
    await expect(paper).to_be_hidden()
    await summary.focus()
    await page.keyboard.press("Enter")
    await expect(paper).to_be_visible()


async def test_the_assignment_page_fits_a_phone(browser: Any, live_server: LiveServer) -> None:
    context = await browser.new_context(viewport={"width": 375, "height": 740})
    page = await context.new_page()
    await page.goto(f"{live_server.base_url}/assignments/{live_server.assignment_id}")
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await expect(page.locator("ol.questions > li")).to_have_count(5)
    await context.close()
