"""A student uploads their paper as a Word document on the paper page and checks the text
that was read from it; a file that cannot be read says why and keeps the draft."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import LiveServer
from tests.browser.test_review_flow import as_person
from tests.document_support import DELETED, DOCX_TYPE, INSERTED, make_docx, make_pdf
from tests.web.canary_support import canary

TEXT = [
    "My harbour image of the therapist: a secure base is a reliable presence.",
    "Attunement means noticing when the client withdraws.",
]


async def test_a_student_uploads_a_word_document_as_their_paper(
    browser: Any, live_server: LiveServer
) -> None:
    base, a = live_server.base_url, live_server.assignment_id
    author = canary("author")
    # A draft only: the review flow test (same live server) has this student submit later.
    context, page, errors = await as_person(browser, live_server, "dara-student")
    await page.goto(f"{base}/assignments/{a}")
    await page.get_by_role("link", name="My paper").click()

    await page.get_by_label("Word (.docx), PDF").set_input_files(
        {"name": "paper.pdf", "mimeType": "application/pdf", "buffer": make_pdf(TEXT, password="")}
    )
    await page.get_by_role("button", name="Upload as draft").click()
    await expect(page.get_by_role("alert").first).to_contain_text("This file is a protected")
    await expect(page.get_by_label("Word (.docx), PDF")).to_have_attribute("aria-invalid", "true")

    await page.get_by_label("Word (.docx), PDF").set_input_files(
        {"name": "dara-mueller.docx", "mimeType": DOCX_TYPE,
         "buffer": make_docx(TEXT, author=author, heading="Secure base")}
    )  # fmt: skip
    await page.get_by_role("button", name="Upload as draft").click()

    await expect(page.get_by_role("status")).to_contain_text("The text of your file is saved")
    body = page.get_by_label("Your paper (markdown)")
    await expect(body).to_have_value(
        f"# Secure base\n\n{TEXT[0]}\n\n{TEXT[1]}\n\nLast words. {INSERTED}"
    )
    html = await page.content()
    assert author not in html and DELETED not in html and "dara-mueller" not in html
    await context.close()
    # The refused file's page comes with its 422, which chromium reports on the console.
    assert [e for e in errors if "status of 422" not in e] == []
