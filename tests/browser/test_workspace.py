"""The moderator's workspace updates live: a student's new thread shows in the participation
table and the summary without a reload, and the page is complete without JavaScript."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import LiveServer, new_page, sign_in_as


async def test_participation_updates_without_a_reload(
    browser: Any, live_server: LiveServer
) -> None:
    mona_ctx, mona, mona_errors = await new_page(browser, live_server)
    ada_ctx, ada, ada_errors = await new_page(browser, live_server)
    try:
        await sign_in_as(mona, live_server, "mona-moderator")
        await mona.goto(f"{live_server.base_url}/assignments/{live_server.assignment_id}/workspace")
        row = mona.locator("[data-live-section=participation] tr", has_text="Q2")
        threads_cell = row.locator("td").nth(0)
        before = int(await threads_cell.inner_text())
        # The charts are server-rendered SVG with a text alternative.
        chart = mona.locator("svg.chart").first
        if await chart.count():
            await expect(chart).to_have_attribute("role", "img")

        await sign_in_as(ada, live_server, "ada-student")
        await ada.goto(f"{live_server.base_url}/assignments/{live_server.assignment_id}")
        await ada.get_by_role("link", name="Discuss question 2").click()
        await ada.get_by_label("Title").fill("Live in the workspace")
        await ada.get_by_label("Your response (Markdown)").fill("Counting, live.")
        await ada.get_by_role("button", name="Post thread").click()
        await expect(ada.get_by_role("heading", name="Live in the workspace")).to_be_visible()

        # No reload: the event stream swaps the sections in.
        await expect(threads_cell).to_have_text(str(before + 1), timeout=15_000)
        await expect(mona.locator("#workspace-status")).to_contain_text("Updated")
    finally:
        for ctx in (mona_ctx, ada_ctx):
            await ctx.close()
    assert mona_errors == [] and ada_errors == []


async def test_the_workspace_reads_without_javascript(
    browser: Any, live_server: LiveServer
) -> None:
    ctx = await browser.new_context(java_script_enabled=False)
    try:
        page = await ctx.new_page()
        await sign_in_as(page, live_server, "ivo-instructor")
        await page.goto(f"{live_server.base_url}/assignments/{live_server.assignment_id}/workspace")
        await expect(page.get_by_role("heading", name="Participation per question")).to_be_visible()
        await expect(page.get_by_role("heading", name="Flag queue")).to_be_visible()
        await expect(page.get_by_role("heading", name="Recent moderation")).to_be_visible()
        assert await page.locator("[data-live-section=participation] tr").count() == 6
    finally:
        await ctx.close()
