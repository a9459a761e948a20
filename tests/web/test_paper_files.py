"""Papers sent as files, through the API and the paper page: the text is extracted and
saved as a typed paper; wrong, damaged, encrypted, empty and oversized files get a clear
4xx and change nothing; and nothing of a file's metadata reaches anyone (canary scan)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import People, make_settings
from tests.document_support import DELETED, DOCX_TYPE, INSERTED, make_docx, make_pdf
from tests.web import review_scenario
from tests.web.canary_support import canary
from tests.web.review_scenario import SAME_PAPER, STUDENTS, personas
from tests.web.test_openapi import check, document
from tests.web.test_reviews_api import cohort_with_people
from web.settings import Settings

PARAGRAPHS = [p for p in SAME_PAPER.split("\n") if p]
P = "/api/v1/assignments/{assignment}"
UPLOAD_LIMIT = 256 * 1024


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, PEERBOARD_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT))


def multipart(data: bytes, *, submit: bool = False, name: str = "paper.docx") -> dict[str, Any]:
    return {
        "files": {"file": (name, data, "application/octet-stream")},
        "data": {"submit": "true" if submit else "false"},
    }


async def test_a_word_document_becomes_the_paper_as_if_typed(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    doc = await document(c["root"])
    author = canary("author")
    sent = await c["ada"].put(
        f"/api/v1/assignments/{a}/paper",
        **multipart(make_docx(PARAGRAPHS, author=author, heading="Secure base"), submit=True),
    )
    check(doc, f"{P}/paper", "put", sent)
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["status"] == "submitted" and body["version"] == 1
    assert body["body"] == (
        f"# Secure base\n\n{PARAGRAPHS[0]}\n\n{PARAGRAPHS[1]}\n\nLast words. {INSERTED}"
    )
    assert "<h1>Secure base</h1>" in body["body_html"]
    assert author not in sent.text and DELETED not in sent.text


async def test_a_file_sent_as_the_body_is_read_by_its_bytes_not_its_declared_type(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    doc = await document(c["root"])
    url = f"/api/v1/assignments/{a}/paper"
    pdf = make_pdf(PARAGRAPHS, author=canary("author"))
    # A PDF announced as text/plain is still a PDF: its text, not its bytes, is the paper.
    sent = await c["ada"].put(url, content=pdf, headers={"Content-Type": "text/plain"})
    check(doc, f"{P}/paper", "put", sent)
    assert sent.status_code == 200, sent.text
    assert sent.json()["body"] == "\n".join(PARAGRAPHS)
    assert sent.json()["status"] == "draft"
    # And a "PDF" that is text is taken as text.
    sent = await c["ada"].put(
        url, content=b"# Notes\n\nPlain words.", headers={"Content-Type": "application/pdf"}
    )
    assert sent.json()["body"] == "# Notes\n\nPlain words." and sent.json()["version"] == 2
    docx = await c["ben"].put(
        url, content=make_docx(PARAGRAPHS), headers={"Content-Type": DOCX_TYPE}
    )
    assert docx.json()["body"] == "\n\n".join(PARAGRAPHS)
    # The typed way is unchanged.
    typed = await c["ben"].put(url, json={"body": "Typed.", "submit": True})
    assert typed.json()["body"] == "Typed." and typed.json()["status"] == "submitted"


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 422, "is not a .docx, .pdf, .md or .txt"),
        (make_pdf(PARAGRAPHS, password="pw"), 422, "encrypted"),
        (b"%PDF-1.7\nbroken", 422, "could not be read as a PDF"),
        (make_pdf(PARAGRAPHS, text=False), 422, "no text that can be extracted"),
        (b"x" * (UPLOAD_LIMIT + 1), 413, "larger than"),
    ],
)
async def test_bad_files_are_refused_with_a_problem_and_change_nothing(
    people: People,
    sessions: async_sessionmaker[AsyncSession],
    data: bytes,
    status: int,
    says: str,
) -> None:
    a, c = await cohort_with_people(people, sessions)
    doc = await document(c["root"])
    url = f"/api/v1/assignments/{a}/paper"
    assert (await c["ada"].put(url, json={"body": "Kept."})).status_code == 200
    for kwargs in (multipart(data), {"content": data, "headers": {"Content-Type": "text/plain"}}):
        refused = await c["ada"].put(url, **kwargs)
        check(doc, f"{P}/paper", "put", refused)
        assert refused.status_code == status, refused.text
        problem = refused.json()
        assert refused.headers["content-type"] == "application/problem+json"
        assert says in problem["detail"]
        assert problem["errors"][0]["field"] == "file"
    mine = (await c["ada"].get(url)).json()
    assert mine["body"] == "Kept." and mine["version"] == 1


async def test_other_media_types_and_a_form_without_its_file_are_refused(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    url = f"/api/v1/assignments/{a}/paper"
    wrong = await c["ada"].put(url, content=b"x", headers={"Content-Type": "image/png"})
    assert wrong.status_code == 415 and wrong.json()["code"] == "unsupported_media_type"
    missing = await c["ada"].put(url, files={"other": ("a.txt", b"text", "text/plain")})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "file"
    # Past the body limit (never below the general one), it is refused before it is read.
    huge = await c["ada"].put(
        url, content=b"x" * (1024 * 1024 + 1), headers={"Content-Type": "text/plain"}
    )
    assert huge.status_code == 413 and "1,048,576 bytes" in huge.json()["detail"]
    # Staff have no paper to upload to: the same answer as for a typed one.
    staff = await c["mona"].put(url, **multipart(make_docx(PARAGRAPHS)))
    assert staff.status_code == 404


async def page_post(client: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response:
    """As the page's form posts: the CSRF token in the form, not in a header."""
    data = {"csrf_token": client.headers["X-CSRF-Token"], **kwargs.pop("data", {})}
    return await client.post(url, data=data, headers={"X-CSRF-Token": ""}, **kwargs)


async def test_the_paper_page_takes_a_file_and_shows_its_text_to_check(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    page = f"/assignments/{a}/paper"
    shown = await c["ada"].get(page)
    assert 'enctype="multipart/form-data"' in shown.text and 'type="file"' in shown.text
    author = canary("author")
    sent = await page_post(
        c["ada"],
        page,
        data={"action": "save"},
        files={"file": ("ada-lovelace.docx", make_docx(PARAGRAPHS, author=author), DOCX_TYPE)},
    )
    assert sent.status_code == 303
    after = await c["ada"].get(sent.headers["location"])
    assert "The text of your file is saved as your draft" in after.text
    textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", after.text, re.S)
    assert textarea is not None and PARAGRAPHS[0] in textarea.group(1)
    assert author not in after.text and "ada-lovelace" not in after.text


async def test_a_refused_file_or_text_on_the_page_keeps_what_the_student_had(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    page = f"/assignments/{a}/paper"
    assert (await page_post(c["ada"], page, data={"body": "My saved draft."})).status_code == 303
    refused = await page_post(
        c["ada"],
        page,
        data={"action": "submit"},
        files={"file": ("paper.pdf", make_pdf(PARAGRAPHS, password="x"), "application/pdf")},
    )
    assert refused.status_code == 422
    assert "This file is a protected (encrypted) PDF" in refused.text
    assert 'id="paper-file-error"' in refused.text
    assert "My saved draft." in refused.text  # the draft, in the textarea, untouched
    assert 'name="csrf_token" value="' + c["ada"].headers["X-CSRF-Token"] in refused.text
    too_big = await page_post(
        c["ada"], page, files={"file": ("p.txt", b"x" * (UPLOAD_LIMIT + 1), "text/plain")}
    )
    assert too_big.status_code == 413 and "This file is larger than" in too_big.text
    typed = await page_post(c["ada"], page, data={"body": "Typed words " + "x" * 100_001})
    assert typed.status_code == 422
    assert "Typed words" in typed.text and 'id="paper-body-error"' in typed.text
    # A NUL is refused before any page sees the form (web/middleware.py), readably.
    nul = await page_post(c["ada"], page, data={"body": "Typed words\x00here"})
    assert nul.status_code == 422 and "NUL" in nul.text
    mine = (await c["ada"].get(f"/api/v1/assignments/{a}/paper")).json()
    assert mine["body"] == "My saved draft." and mine["version"] == 1


EVERYWHERE = (
    "/api/v1/assignments/{a}/exports/reviews.csv",
    "/api/v1/assignments/{a}/exports/reviews.json",
    "/api/v1/assignments/{a}/exports/posts.csv",
    "/api/v1/assignments/{a}/exports/participation.csv",
    "/api/v1/assignments/{a}/workspace",
    "/api/v1/assignments/{a}/workspace/events?poll=1",
    "/assignments/{a}/workspace",
    "/api/v1/assignments/{a}/exemplars",
    "/assignments/{a}/exemplars",
)


async def test_file_metadata_never_reaches_anyone_on_any_review_route(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Students upload Word and PDF papers whose every metadata field names them (and a
    canary of the file); the whole review round is recorded for every viewer. The files'
    canaries reach nobody, staff included; classmates never read another's name."""
    people = personas(random_names=True)
    file_canaries = {name: canary("meta") for name in ("ada", "ben", "chen")}

    def metadata_name(name: str) -> str:
        p = people[name]
        return f"{p.display_name} {p.email} {file_canaries[name]}"

    markers = {name: f"Marker sentence of {name}'s file." for name in file_canaries}
    uploads = {
        "ada": make_docx([*PARAGRAPHS, markers["ada"]], author=metadata_name("ada")),
        "ben": make_pdf([*PARAGRAPHS, markers["ben"]], author=metadata_name("ben")),
        "chen": make_docx([*PARAGRAPHS, markers["chen"]], author=metadata_name("chen")),
    }
    rec = await review_scenario.run(
        asgi, sessions, people=people, uploads=uploads, extra_paths=EVERYWHERE
    )

    for viewer, responses in rec.responses.items():
        for label, blob in responses:
            for secret in file_canaries.values():
                assert secret.encode() not in blob, (viewer, label)
            if viewer not in (*STUDENTS, "zed", "anonymous"):
                continue  # staff may read names (exports for grading, the audit log)
            for person in people.values():
                if person.name == viewer:
                    continue
                for name in person.canaries:
                    assert name.encode() not in blob, (viewer, label, person.name)
    # The uploaded text did reach the reviewers (and the quotes in it were accepted).
    reviewers_saw = b"".join(
        blob for viewer in STUDENTS for label, blob in rec.responses[viewer] if "task" in label
    )
    for name, marker in markers.items():
        assert marker.encode() in reviewers_saw, name
    assert INSERTED.encode() in reviewers_saw and DELETED.encode() not in reviewers_saw
    staff_saw = b"".join(blob for _, blob in rec.responses["mona"])
    assert b"text/csv" in staff_saw and b"Krippendorff" in staff_saw
