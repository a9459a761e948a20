"""Two people in two browsers: one replies, the other sees the reply appear without a reload;
an anonymous post shows the alias to the classmate and the name to the moderator."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import LiveServer, new_page, sign_in_as


async def test_a_reply_appears_live_and_anonymity_holds(
    browser: Any, live_server: LiveServer
) -> None:
    ada_ctx, ada, ada_errors = await new_page(browser, live_server)
    ben_ctx, ben, ben_errors = await new_page(
        browser, live_server, viewport={"width": 375, "height": 740}
    )
    mona_ctx, mona, mona_errors = await new_page(browser, live_server)
    try:
        await sign_in_as(ada, live_server, "ada-student")
        await ada.goto(f"{live_server.base_url}/assignments/{live_server.assignment_id}")
        await ada.get_by_role("link", name="Discuss question 1").click()
        await expect(
            ada.get_by_text("moderators and instructors will see your name").first
        ).to_be_visible()
        await ada.get_by_label("Title").fill("Being a safe haven")
        await ada.get_by_label("Your response (Markdown)").fill("My clients *lean* on me.")
        await ada.get_by_label("Anonymous to classmates").check()
        await ada.get_by_role("button", name="Post thread").click()
        await expect(ada.get_by_role("heading", level=1)).to_have_text("Being a safe haven")
        thread_url = ada.url

        await sign_in_as(ben, live_server, "ben-student")
        await ben.goto(thread_url)
        opening = ben.locator("article.post").first
        await expect(opening).to_contain_text("My clients lean on me.")
        await expect(opening.locator(".post-author")).to_have_text(
            re.compile(r"^Anonymous \w+ \w+$")
        )
        main = await ben.locator("main").inner_text()
        assert "Ada" not in main and "Lindqvist" not in main
        overflow = await ben.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0

        await sign_in_as(mona, live_server, "mona-moderator")
        await mona.goto(thread_url)
        await expect(mona.locator("article.post").first.locator(".post-author")).to_have_text(
            "Ada Lindqvist"
        )

        # Ada replies from her browser (keyboard only); Ben's page shows it without reloading.
        await ada.get_by_label("Your reply (Markdown)").last.focus()
        await ada.keyboard.type("A second thought, live.")
        await ada.get_by_label("Anonymous to classmates").last.check()
        await ada.get_by_role("button", name="Post reply").last.press("Enter")
        await expect(ben.locator("#replies")).to_contain_text(
            "A second thought, live.", timeout=10_000
        )
        live_main = await ben.locator("main").inner_text()
        assert "Ada" not in live_main
        await expect(mona.locator("#replies")).to_contain_text("Ada Lindqvist", timeout=10_000)
    finally:
        for ctx in (ada_ctx, ben_ctx, mona_ctx):
            await ctx.close()
    assert ada_errors == [] and ben_errors == [] and mona_errors == []
