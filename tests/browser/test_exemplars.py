"""A moderator nominates a post with a note, the author consents to be shown anonymously,
and a classmate finds it in the question's gallery as "A classmate's" (never the alias)."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import LiveServer, new_page, sign_in_as


async def test_nominate_consent_and_the_gallery(browser: Any, live_server: LiveServer) -> None:
    ada_ctx, ada, ada_errors = await new_page(browser, live_server)
    mona_ctx, mona, mona_errors = await new_page(browser, live_server)
    dara_ctx, dara, dara_errors = await new_page(browser, live_server)
    try:
        await sign_in_as(ada, live_server, "ada-student")
        await ada.goto(f"{live_server.base_url}/assignments/{live_server.assignment_id}")
        await ada.get_by_role("link", name="Discuss question 3").click()
        await ada.get_by_label("Title").fill("What I took from the article")
        await ada.get_by_label("Your response (Markdown)").fill(
            "The attunement section changed how I *pace* sessions."
        )
        await ada.get_by_role("button", name="Post thread").click()
        thread_url = ada.url

        await sign_in_as(mona, live_server, "mona-moderator")
        await mona.goto(thread_url)
        opening = mona.locator("article.post").first
        await opening.get_by_text("Nominate as exemplar").click()
        await opening.get_by_label("Why is it exemplary?").fill(
            "Names a concrete change in practice and ties it to the article."
        )
        await opening.get_by_label("Publish it now").check()
        await opening.get_by_role("button", name="Nominate").click()
        await expect(mona.get_by_role("status")).to_contain_text("Nominated")
        await expect(mona.locator("li.exemplar")).to_contain_text("What I took from the article")
        await expect(mona.locator("li.exemplar")).to_contain_text("Ada Lindqvist")  # curators

        # The author is told, and chooses to be shown anonymously.
        await ada.goto(f"{live_server.base_url}/assignments/{live_server.assignment_id}")
        await ada.get_by_role("link", name="Exemplars", exact=True).click()
        mine = ada.locator("li.exemplar", has_text="What I took from the article")
        await expect(mine.get_by_text("This is your work.")).to_be_visible()
        await mine.get_by_role("button", name="As a classmate's, without my name").click()
        await expect(ada.get_by_role("status")).to_have_text(
            "Shown as a classmate's, without your name."
        )

        # A classmate sees it in question 3's gallery, as a classmate's, with the note.
        await sign_in_as(dara, live_server, "dara-student")
        await dara.goto(f"{live_server.base_url}/assignments/{live_server.assignment_id}")
        await dara.get_by_role("link", name="Discuss question 3").click()
        await dara.get_by_role("link", name="Exemplar responses to this question").click()
        card = dara.locator("li.exemplar", has_text="What I took from the article")
        await expect(card).to_contain_text("Names a concrete change in practice")
        await expect(card.locator(".meta strong").first).to_have_text("A classmate")
        text = await dara.locator("main").inner_text()
        assert "Ada" not in text and "Lindqvist" not in text
    finally:
        for ctx in (ada_ctx, mona_ctx, dara_ctx):
            await ctx.close()
    assert ada_errors == [] and mona_errors == [] and dara_errors == []
