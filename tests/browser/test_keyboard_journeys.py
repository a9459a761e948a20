"""Journeys by keyboard, on the living demo: a reviewer quotes evidence and submits a review
without touching the mouse, and a form that fails keeps what was typed, with the error next
to the field and the focus on it."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import LiveServer, new_page, sign_in_as


async def focused(page: Any) -> dict[str, str]:
    info: dict[str, str] = await page.evaluate(
        """() => {
            const el = document.activeElement;
            return {id: el.id || "", cls: el.className || "", text: el.textContent || ""};
        }"""
    )
    return info


async def test_a_reviewer_quotes_evidence_and_submits_using_only_the_keyboard(
    browser: Any, demo_server: LiveServer
) -> None:
    context, page, errors = await new_page(browser, demo_server)
    await sign_in_as(page, demo_server, "ada-student")
    await page.goto(f"{demo_server.base_url}/assignments/{demo_server.assignment_id}/review-tasks")
    # Ada's review of Chen's paper is not started yet.
    todo = page.locator("#review-tasks li:has(.task-assigned) a").first
    await todo.focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Review of "))
    await expect(page.get_by_role("heading", name="Before you start")).to_be_visible()
    await expect(page.locator(".how-to")).to_contain_text("Each stance needs a quote.")

    # "Quote into" starts on the overall stance; Tab moves into the paper, on its first
    # sentence; the arrow keys go from sentence to sentence; Enter quotes one.
    await expect(page.locator("#paper-text .sentence").first).to_be_visible()  # script ran
    await page.get_by_label("Quote into").focus()
    await page.keyboard.press("Tab")
    first = await focused(page)
    assert "sentence" in first["cls"], first
    await page.keyboard.press("ArrowDown")
    second = await focused(page)
    assert "sentence" in second["cls"] and second["text"] != first["text"]
    await page.keyboard.press("Enter")
    quoted = second["text"].strip()
    await expect(page.locator("ul.quotes[data-component=''] li q")).to_have_text(quoted)
    await expect(page.locator("#review-status")).to_have_text("Quote added to the overall stance.")

    # The overall stance and each component's stance, chosen by typing on the select.
    await page.get_by_label("Does the paper agree with").focus()
    await page.keyboard.type("Mostly a")
    await expect(page.get_by_label("Does the paper agree with")).to_have_value("mostly_agrees")
    selects = page.locator("select[data-key]")
    for i in range(await selects.count()):
        await selects.nth(i).focus()
        await page.keyboard.type("Agrees" if i == 0 else "Not")
    first_key = await selects.nth(0).get_attribute("data-key")
    assert await selects.nth(0).input_value() == "agrees"

    # A typed quote for the first component: a passage that is not in the paper is refused
    # beside the box, then a real one (whitespace may differ) is added.
    box = page.locator(f"input.typed-quote[data-component='{first_key}']")
    await box.focus()
    await page.keyboard.type("words that are nowhere in this paper at all")
    await page.keyboard.press("Enter")
    await expect(page.locator(f"#c-{first_key}-quote-error")).to_contain_text(
        "not a passage of the paper"
    )
    assert (await focused(page))["id"] == f"c-{first_key}-quote"
    await box.fill("")
    passage = " ".join(first["text"].split()[:6])
    await page.keyboard.type(passage.replace(" ", "  ", 1))
    await page.keyboard.press("Enter")
    await expect(page.locator(f"ul.quotes[data-component='{first_key}'] li q")).to_have_count(1)

    # Submitting without a rationale: the error is next to the field, the focus on it.
    await page.get_by_role("button", name="Submit review").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#rationale-error")).to_have_text("Explain your judgment.")
    await expect(page.get_by_label("Rationale")).to_be_focused()
    await expect(page.get_by_label("Rationale")).to_have_attribute("aria-invalid", "true")
    await page.keyboard.type("It agrees the therapist is a secure base, and says so.")
    await page.get_by_role("button", name="Submit review").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#review-status")).to_have_text(
        "Your review is submitted. It is read-only now."
    )
    await expect(page.locator("#review-form")).to_have_class(re.compile(r"\bread-only\b"))
    await expect(page.get_by_label("Does the paper agree with")).to_be_disabled()
    # The next review (Ada's draft) is offered, and has the focus.
    next_link = page.locator("#next-review a")
    await expect(next_link).to_be_focused()
    await expect(next_link).to_contain_text("Next review: Paper ")

    # Reloaded, the review reads as read-only, with its quotes.
    await page.reload()
    await expect(page.locator("#read-only-notice")).to_contain_text("read-only")
    await expect(page.locator("ul.quotes[data-component=''] li q")).to_have_text(quoted)
    await context.close()
    # The refused submission is a 422 answer the browser logs; nothing else may go wrong.
    assert [e for e in errors if "status of 422" not in e] == []


async def test_a_refused_thread_keeps_what_was_typed(browser: Any, demo_server: LiveServer) -> None:
    context, page, errors = await new_page(browser, demo_server)
    await sign_in_as(page, demo_server, "ben-student")
    await page.goto(f"{demo_server.base_url}/assignments/{demo_server.assignment_id}")
    await page.get_by_role("link", name=re.compile(r"^Discuss question 1")).first.click()
    body = "Three paragraphs I would hate to type again."
    await page.get_by_label("Title").fill("   ")
    await page.get_by_label("Your response (Markdown)").fill(body)
    await page.get_by_role("button", name="Post thread").click()
    await expect(page.locator("#title-error")).to_have_text("The title must not be empty.")
    await expect(page.get_by_label("Title")).to_be_focused()
    await expect(page.get_by_label("Your response (Markdown)")).to_have_value(body)
    await context.close()
    assert [e for e in errors if "status of 422" not in e] == []
