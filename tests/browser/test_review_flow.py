"""Peer review in the browser: students submit papers, the instructor starts review, a
student reviews a paper quoting a passage they select, and the paper's author sees the
review with the passage highlighted and rates it."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import LiveServer, new_page, sign_in_as

# A word in each paper lets the test find who wrote the paper ada reviews (reviewers see
# only the code; the test needs the author to sign in as them).
MARKERS = {"ada": "harbour", "ben": "lighthouse", "chen": "anchor", "dara": "compass"}
QUOTE = "a reliable presence from which the client explores"


def paper(word: str) -> str:
    return (
        f"My {word} image of the therapist: a secure base is {QUOTE}.\n\n"
        "Attunement means noticing when the client withdraws, and I agree with that."
    )


async def move_to(page: Any, phase: str) -> None:
    """A phase button asks first (listing what the move does); "Yes" moves."""
    await page.get_by_role("button", name=re.compile(rf"(Forward|Back) to {phase}")).click()
    await expect(page.locator(".confirm li").first).to_be_visible()
    understood = page.locator("#confirm")
    if await understood.count():
        await understood.check()
    await page.get_by_role("button", name=f"Yes, move to {phase}").click()


async def as_person(
    browser: Any, live_server: LiveServer, subject: str
) -> tuple[Any, Any, list[str]]:
    context, page, errors = await new_page(browser, live_server)
    await sign_in_as(page, live_server, subject)
    return context, page, errors


async def test_review_with_a_selected_quote_then_the_author_rates_it(
    browser: Any, live_server: LiveServer
) -> None:
    a = live_server.assignment_id
    base = live_server.base_url
    for name, word in MARKERS.items():
        context, page, errors = await as_person(browser, live_server, f"{name}-student")
        await page.goto(f"{base}/assignments/{a}")
        await page.get_by_role("link", name="My paper").click()
        await page.get_by_label("Your paper (markdown)").fill(paper(word))
        await page.get_by_role("button", name="Submit paper").click()
        await expect(page.get_by_role("status")).to_have_text("Your paper is submitted.")
        await context.close()
        assert errors == []

    context, page, errors = await as_person(browser, live_server, "ivo-instructor")
    await page.goto(f"{base}/assignments/{a}")
    await page.get_by_role("link", name="Review dashboard").click()
    await move_to(page, "review")
    await expect(page.get_by_role("status").first).to_contain_text("now in review")
    await context.close()
    assert errors == []

    context, page, errors = await as_person(browser, live_server, "ada-student")
    await page.goto(f"{base}/assignments/{a}/review-tasks")
    await page.locator("#review-tasks a").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"^Review of Paper ")
    )
    await expect(page.locator("#paper-text .sentence").first).to_be_visible()  # script ran
    text = await page.locator("#paper-text").inner_text()
    author = next(n for n, w in MARKERS.items() if w in text)
    assert author != "ada"
    # Select the passage with the mouse's equivalent, then use it as evidence.
    await page.evaluate(
        """(needle) => {
            // The page shows the paper sentence by sentence: find the text node.
            const walker = document.createTreeWalker(
                document.getElementById("paper-text"), NodeFilter.SHOW_TEXT);
            let node = walker.nextNode();
            while (node && !node.textContent.includes(needle)) node = walker.nextNode();
            const at = node.textContent.indexOf(needle);
            const range = document.createRange();
            range.setStart(node, at);
            range.setEnd(node, at + needle.length);
            const selection = window.getSelection();
            selection.removeAllRanges();
            selection.addRange(range);
        }""",
        QUOTE,
    )
    await page.locator("button.add-quote[data-component='']").click()
    await expect(page.locator("ul.quotes[data-component=''] li")).to_contain_text(QUOTE)
    await page.get_by_label("Does the paper agree with").select_option("mostly_agrees")
    for select in await page.locator("select[data-key]").all():
        await select.select_option("not_addressed")
    await page.get_by_label("Rationale").fill("It agrees that the therapist is a secure base.")
    await page.get_by_role("button", name="Submit review").click()
    await expect(page.locator("#review-status")).to_have_text(
        "Your review is submitted. It is read-only now."
    )
    await context.close()
    assert errors == []

    context, page, errors = await as_person(browser, live_server, "ivo-instructor")
    await page.goto(f"{base}/assignments/{a}/review-dashboard")
    await move_to(page, "feedback")
    await expect(page.get_by_role("status").first).to_contain_text("now in feedback")
    await context.close()

    context, page, errors = await as_person(browser, live_server, f"{author}-student")
    await page.goto(f"{base}/assignments/{a}")
    await page.get_by_role("link", name="Feedback on my paper").click()
    await expect(page.locator("mark.evidence")).to_have_text(QUOTE)
    card = page.locator("article.review-card")
    await expect(card).to_have_count(1)
    await expect(card.get_by_role("heading", level=2)).to_have_text(re.compile(r"^Reviewer \d$"))
    await expect(card).not_to_contain_text("Ada")
    await card.get_by_label("5").check()
    await card.get_by_label("Comment (optional)").fill("The quote made it clear.")
    await card.get_by_role("button", name=re.compile(r"^Rate Reviewer")).click()
    await expect(page.get_by_role("status").first).to_have_text("Thank you: your rating is saved.")
    await expect(page.locator("article.review-card input[value='5']")).to_be_checked()
    await context.close()
    assert errors == []

    # Leave the shared demo as other browser tests expect it: open for papers.
    context, page, errors = await as_person(browser, live_server, "ivo-instructor")
    await page.goto(f"{base}/assignments/{a}/review-dashboard")
    await move_to(page, "review")
    await expect(page.get_by_role("status").first).to_contain_text("now in review")
    await move_to(page, "open")
    await expect(page.get_by_role("status").first).to_contain_text("now in open")
    await context.close()
    assert errors == []
