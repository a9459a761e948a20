"""Creating and reading cohorts and assignments through the JSON API and the pages."""

from __future__ import annotations

import json

import httpx
import pytest

SECOND_DOCUMENT = (
    "Comparing Bowlby And Ainsworth\r\n\r\n"
    "Comparing Bowlby and Ainsworth\r\n\r\n"
    "Summarise Bowlby’s idea of a “secure base” in your own words.\r\n\r\n"
    "How did Ainsworth’s Strange Situation test that idea?\r\n\r\n"
    "Paper For Above instruction\r\n\r\n"
    "Bowlby described the caregiver as a base from which the child explores.\r\n\r\n"
    "References\r\n\r\n"
    "- Bowlby, J. (1988). A secure base. Basic Books.\r\n"
)

STRUCTURED = {
    "title": "Structured assignment",
    "questions": [{"prompt": "First?"}, "Second?"],
    "rubric": {
        "source": "Mikulincer & Shaver (2019)",
        "components": [{"key": "secure-base", "label": "The therapist as a secure base"}],
    },
}


async def make_cohort(client: httpx.AsyncClient, slug: str = "psy") -> None:
    response = await client.post("/api/v1/cohorts", json={"slug": slug, "name": "PSY 612"})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/api/v1/cohorts/{slug}"


async def assignment_count(client: httpx.AsyncClient, slug: str = "psy") -> int:
    return len((await client.get(f"/api/v1/cohorts/{slug}/assignments")).json())


async def test_import_the_fixture_as_text_and_read_it_back(
    client: httpx.AsyncClient, fixture_text: str
) -> None:
    await make_cohort(client)
    created = await client.post(
        "/api/v1/cohorts/psy/assignments",
        content=fixture_text.encode(),
        headers={"content-type": "text/plain; charset=utf-8"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/api/v1/assignments/{body['id']}"
    assert body["title"] == "Reflect On The Ways You Have Been A Secure Base For Your Clients"
    assert len(body["questions"]) == 5
    assert len(body["references"]) == 10
    assert body["phase"] == "draft"

    again = await client.get(created.headers["location"])
    assert again.json() == body
    listed = (await client.get("/api/v1/cohorts/psy/assignments")).json()
    assert [(a["id"], a["question_count"]) for a in listed] == [(body["id"], 5)]


async def test_another_document_of_the_same_shape_gives_its_own_questions(
    client: httpx.AsyncClient,
) -> None:
    await make_cohort(client)
    created = await client.post(
        "/api/v1/cohorts/psy/assignments",
        content=SECOND_DOCUMENT.encode(),
        headers={"content-type": "text/plain"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["title"] == "Comparing Bowlby And Ainsworth"
    assert [q["prompt"] for q in body["questions"]] == [
        "Summarise Bowlby’s idea of a “secure base” in your own words.",
        "How did Ainsworth’s Strange Situation test that idea?",
    ]
    assert body["references"] == ["Bowlby, J. (1988). A secure base. Basic Books."]


async def test_import_structured_json_with_rubric(client: httpx.AsyncClient) -> None:
    await make_cohort(client)
    created = await client.post("/api/v1/cohorts/psy/assignments", json=STRUCTURED)
    assert created.status_code == 201, created.text
    body = created.json()
    assert [q["prompt"] for q in body["questions"]] == ["First?", "Second?"]
    assert body["rubric"] == {
        "source": "Mikulincer & Shaver (2019)",
        "components": [
            {
                "key": "secure-base",
                "label": "The therapist as a secure base",
                "description": "",
                "question": None,  # the document links it to no question
            }
        ],
    }


@pytest.mark.parametrize(
    ("content", "content_type", "where"),
    [
        ("Only A Title\n", "text/plain", "line"),
        ("Title\n\nQuestion one?\x00\n", "text/plain", "line"),
        ('{"title": "x", "questions": []}', "application/json", "field"),
        ('{"title": "x",\n "questions": [', "application/json", "line"),
        ('{"title": "x", "questions": ["q"], "surprise": 1}', "application/json", "field"),
    ],
)
async def test_a_malformed_document_imports_nothing_and_says_where_and_why(
    client: httpx.AsyncClient, content: str, content_type: str, where: str
) -> None:
    await make_cohort(client)
    response = await client.post(
        "/api/v1/cohorts/psy/assignments",
        content=content.encode(),
        headers={"content-type": content_type},
    )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] in ("import_rejected", "bad_request")
    if problem["code"] == "import_rejected":
        assert problem["errors"] and all(where in e for e in problem["errors"])
        assert all(e["message"] for e in problem["errors"])
    assert await assignment_count(client) == 0


async def test_deep_json_is_a_clean_4xx(client: httpx.AsyncClient) -> None:
    await make_cohort(client)
    deep = "[" * 5000 + "]" * 5000
    response = await client.post(
        "/api/v1/cohorts/psy/assignments",
        content=deep.encode(),
        headers={"content-type": "application/json"},
    )
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


async def test_unsupported_media_type_is_415(client: httpx.AsyncClient) -> None:
    await make_cohort(client)
    response = await client.post(
        "/api/v1/cohorts/psy/assignments",
        content=b"<xml/>",
        headers={"content-type": "application/xml"},
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


async def test_cohort_validation_errors_are_per_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/cohorts", json={"slug": "Not OK", "name": ""})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"slug"}
    missing = await client.post("/api/v1/cohorts", json={"slug": "ok"})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "name"
    await make_cohort(client, "ok")
    duplicate = await client.post("/api/v1/cohorts", json={"slug": "ok", "name": "Again"})
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "already_exists"


async def test_nul_bytes_are_refused_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/cohorts", json={"slug": "nul", "name": "a\u0000b"})
    assert response.status_code == 422


async def test_someone_not_signed_in_from_elsewhere_sees_nothing(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient, fixture_text: str
) -> None:
    await make_cohort(client)
    created = await client.post(
        "/api/v1/cohorts/psy/assignments",
        content=fixture_text.encode(),
        headers={"content-type": "text/plain"},
    )
    assignment_id = created.json()["id"]

    assert (await stranger.get("/api/v1/cohorts")).json() == []
    hidden = await stranger.get("/api/v1/cohorts/psy")
    missing = await stranger.get("/api/v1/cohorts/no-such-cohort")
    # "Not allowed to see" answers exactly like "does not exist".
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"]
    assert (await stranger.get(f"/api/v1/assignments/{assignment_id}")).status_code == 404
    assert (await stranger.get(f"/api/v1/assignments/{assignment_id + 1000}")).status_code == 404
    refused = await stranger.post(
        "/api/v1/cohorts/psy/assignments",
        content=fixture_text.encode(),
        headers={"content-type": "text/plain"},
    )
    assert refused.status_code == 404
    assert (
        await stranger.post("/api/v1/cohorts", json={"slug": "x", "name": "X"})
    ).status_code == 404
    page = await stranger.get(f"/assignments/{assignment_id}")
    assert page.status_code == 303  # pages send visitors to sign in first
    assert page.headers["location"] == f"/signin?next=/assignments/{assignment_id}"
    assert "Secure Base" not in page.text
    assert await assignment_count(client) == 1


async def test_assignment_page_shows_the_questions_paper_and_references(
    client: httpx.AsyncClient, fixture_text: str
) -> None:
    await make_cohort(client)
    created = await client.post(
        "/api/v1/cohorts/psy/assignments",
        content=fixture_text.encode(),
        headers={"content-type": "text/plain"},
    )
    page = await client.get(f"/assignments/{created.json()['id']}")
    assert page.status_code == 200
    html = page.text
    title = "Reflect On The Ways You Have Been A Secure Base For Your Clients"
    assert f"<title>{title} · Peerboard</title>" in html
    assert html.count('class="question"') == 5
    assert "Paper For Above instruction" not in html
    assert "Mikulincer, M., &amp; Shaver, P. R. (2019)" in html
    cohort_page = await client.get("/cohorts/psy")
    assert f'href="/assignments/{created.json()["id"]}"' in cohort_page.text
    home = await client.get("/")
    assert 'href="/cohorts/psy"' in home.text


async def test_hostile_names_are_escaped_in_pages(client: httpx.AsyncClient) -> None:
    hostile = "<script>alert(1)</script>{{7*7}}"
    await client.post("/api/v1/cohorts", json={"slug": "xss", "name": hostile})
    created = await client.post(
        "/api/v1/cohorts/xss/assignments",
        content=json.dumps({"title": hostile, "questions": [hostile]}).encode(),
        headers={"content-type": "application/json"},
    )
    assert created.status_code == 201, created.text
    for path in ("/", "/cohorts/xss", f"/assignments/{created.json()['id']}"):
        html = (await client.get(path)).text
        assert "<script>alert(1)</script>" not in html
        # Escaped where it is shown, and template syntax stays text: a name
        # evaluated as a template would read "...&lt;/script&gt;49". (A bare
        # "49" can occur by chance, e.g. inside a random CSRF token.)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;{{7*7}}" in html
        assert "&lt;/script&gt;49" not in html


async def test_staff_edit_deadlines_and_settings_with_optimistic_versions(
    client: httpx.AsyncClient, fixture_text: str
) -> None:
    await make_cohort(client)
    made = (
        await client.post(
            "/api/v1/cohorts/psy/assignments", content=fixture_text.encode(),
            headers={"content-type": "text/plain"},
        )
    ).json()  # fmt: skip
    url = f"/api/v1/assignments/{made['id']}"
    changed = await client.patch(url, json={
        "version": made["version"], "paper_due_at": "2027-03-01T17:00:00Z",
        "review_due_at": "2027-03-08T17:00:00Z", "auto_advance": True,
        "late_policy": "refuse", "reviews_per_paper": 2,
    })  # fmt: skip
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["paper_due_at"] == "2027-03-01T17:00:00Z"
    assert body["reviews_per_paper"] == 2 and body["version"] == made["version"] + 1

    stale = await client.patch(url, json={"version": made["version"], "title": "Late edit"})
    assert stale.status_code == 409
    backwards = await client.patch(url, json={
        "version": body["version"], "review_due_at": "2027-02-01T17:00:00Z",
    })  # fmt: skip
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "review_due_at"
    naive = await client.patch(url, json={
        "version": body["version"], "paper_due_at": "2027-03-01T17:00:00",
    })  # fmt: skip
    assert naive.status_code == 422
    unchanged = (await client.get(url)).json()
    assert unchanged["title"] == made["title"] and unchanged["version"] == body["version"]
