"""A new user opens the demo, signs in as one of the demo people, finds the Secure Base
assignment with its five questions, and signs out."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import LiveServer, new_page, sign_in_as

TITLE = "Reflect On The Ways You Have Been A Secure Base For Your Clients"


async def test_sign_in_see_the_five_questions_and_sign_out(
    page: Any, live_server: LiveServer
) -> None:
    await page.goto(live_server.base_url + "/")
    await expect(page.get_by_role("heading", name="Welcome to Peerboard")).to_be_visible()
    await sign_in_as(page, live_server, "ada-student")

    await expect(page.get_by_text("Signed in as")).to_contain_text("Ada Lindqvist")
    await page.get_by_role("link", name="PSY 612 · Attachment in Psychotherapy (demo)").click()
    await page.get_by_role("link", name=TITLE).click()

    await expect(page).to_have_url(
        f"{live_server.base_url}/assignments/{live_server.assignment_id}"
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    questions = page.locator("ol.questions > li")
    await expect(questions).to_have_count(5)
    await expect(questions.nth(0)).to_contain_text(
        'Reflect on the ways you have been a "secure base"'
    )
    await expect(questions.nth(4)).to_contain_text("a therapist's own attachment pattern")
    await expect(page.get_by_text("Mikulincer & Shaver (2019)").first).to_be_visible()

    # The sample paper is folded away; opening it works from the keyboard.
    paper = page.get_by_text("The role of the therapist as a secure base is fundamental")
    await expect(paper).to_be_hidden()
    await page.get_by_text("Read the sample paper that came with this assignment").focus()
    await page.keyboard.press("Enter")
    await expect(paper).to_be_visible()

    # A student does not get the member management link.
    await page.goto(live_server.base_url + "/cohorts/demo")
    await expect(page.get_by_role("link", name="Members, join code and group rules")).to_have_count(
        0
    )

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Welcome to Peerboard")).to_be_visible()
    await page.goto(f"{live_server.base_url}/assignments/{live_server.assignment_id}")
    await expect(page).to_have_url(
        f"{live_server.base_url}/signin?next=/assignments/{live_server.assignment_id}"
    )


async def test_the_instructor_manages_members(page: Any, live_server: LiveServer) -> None:
    await sign_in_as(page, live_server, "ivo-instructor")
    await page.goto(live_server.base_url + "/cohorts/demo")
    await page.get_by_role("link", name="Members, join code and group rules").click()
    await expect(page.get_by_role("heading", name="Members", exact=True)).to_be_visible()
    await expect(page.locator("table.roster tbody tr")).to_have_count(6)
    await page.get_by_role("button", name="Create a code").click()
    await expect(page.get_by_role("status")).to_have_text("A new join code is ready.")
    await expect(page.locator(".code")).to_have_text(re.compile(r"^[A-Z2-9]{8}$"))


async def test_the_assignment_page_fits_a_phone(browser: Any, live_server: LiveServer) -> None:
    context, page, errors = await new_page(
        browser, live_server, viewport={"width": 375, "height": 740}
    )
    await sign_in_as(page, live_server, "ben-student")
    await page.goto(f"{live_server.base_url}/assignments/{live_server.assignment_id}")
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await expect(page.locator("ol.questions > li")).to_have_count(5)
    await context.close()
    assert errors == []


async def test_the_demo_sign_in_page_lists_each_person_with_their_role(
    page: Any, live_server: LiveServer
) -> None:
    await page.goto(live_server.base_url + "/signin")
    table = page.get_by_role("table", name="Who is who in the demo")
    ada = table.get_by_role("row").filter(has_text="Ada Lindqvist")
    await expect(ada).to_contain_text("student")
    await expect(ada).to_contain_text("ada-student")
    ivo = table.get_by_role("row").filter(has_text="Ivo Ivanov")
    await expect(ivo).to_contain_text("instructor")
    mona = table.get_by_role("row").filter(has_text="Mona Okafor")
    await expect(mona).to_contain_text("moderator")
    await expect(table.get_by_role("row")).to_have_count(7)  # the header and six people
