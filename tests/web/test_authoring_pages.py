"""Authoring over HTTP: upload → preview → create on pages, mistakes re-rendered with the
person's input and the CSRF token, questions and rubric editors (locked with a reason), copy,
and the same operations in the JSON API."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from services.models import Role
from tests.conftest import People
from tests.document_support import DOCX_TYPE, make_docx


async def _staff(people: People, client: httpx.AsyncClient) -> dict[str, httpx.AsyncClient]:
    for slug in ("psy", "next"):
        made = await client.post("/api/v1/cohorts", json={"slug": slug, "name": slug.upper()})
        assert made.status_code == 201
    ivo = await people.member("ivo", "psy", Role.instructor)
    await people.member("ivo", "next", Role.instructor)
    ada = await people.member("ada", "psy", Role.student)
    return {"ivo": ivo, "ada": ada}


def _fields(html: str, action: str = "/cohorts/psy/assignments/create") -> list[tuple[str, str]]:
    """The form's submitted fields as a browser would send them (inputs, textareas, the
    selected option of each select), without the buttons."""
    fields: list[tuple[str, str]] = []
    form = html[html.index(f'action="{action}') :]
    form = form[: form.index("</form>")]
    pattern = r"<(input|textarea)\b([^>]*)>(.*?)(?=</textarea>|<)"
    for tag in re.finditer(pattern, form, re.S):
        kind, attrs = tag.group(1), tag.group(2)
        name = re.search(r'name="([^"]+)"', attrs)
        if name is None:
            continue
        if kind == "input":
            if 'type="checkbox"' in attrs and "checked" not in attrs:
                continue
            value = re.search(r'value="([^"]*)"', attrs)
            fields.append((name.group(1), _unescape(value.group(1) if value else "on")))
        elif kind == "textarea":
            fields.append((name.group(1), _unescape(tag.group(3).lstrip("\n"))))
    for select in re.finditer(r'<select\b[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', select.group(2))
        fields.append((select.group(1), chosen.group(1) if chosen else ""))
    return fields


def _as_form(pairs: list[tuple[str, Any]]) -> dict[str, list[str]]:
    form: dict[str, list[str]] = {}
    for key, value in pairs:
        form.setdefault(key, []).append(value)
    return form


def _unescape(text: str) -> str:
    return html.unescape(text)


async def test_an_instructor_uploads_checks_and_creates_the_secure_base_assignment(
    people: People, client: httpx.AsyncClient, fixture_text: str
) -> None:
    c = await _staff(people, client)
    cohort_page = await c["ivo"].get("/cohorts/psy")
    assert 'href="/cohorts/psy/assignments/new"' in cohort_page.text
    assert "/cohorts/psy/assignments/new" not in (await c["ada"].get("/cohorts/psy")).text
    upload = await c["ivo"].get("/cohorts/psy/assignments/new")
    assert upload.status_code == 200 and 'type="file"' in upload.text

    docx = make_docx([line for line in fixture_text.split("\n") if line.strip()])
    preview = await c["ivo"].post(
        "/cohorts/psy/assignments/new", files={"file": ("secure-base.docx", docx, DOCX_TYPE)}
    )
    assert preview.status_code == 200, preview.text[:500]
    assert "5 questions" in preview.text and "10 references" in preview.text
    assert (
        "A proposed stance rubric: 4 components, judged against Mikulincer &amp; Shaver (2019)"
        in preview.text
    )
    assert (await c["ivo"].get("/api/v1/cohorts/psy/assignments")).json() == []  # not stored

    fields = [(k, v) for k, v in _fields(preview.text) if k != "csrf_token"]
    # Fix the rubric: rename the first component, link the last to question 4.
    labels = [i for i, (k, _) in enumerate(fields) if k == "component_label"]
    fields[labels[0]] = ("component_label", "The therapist as a secure base")
    created = await c["ivo"].post(
        "/cohorts/psy/assignments/create", data=_as_form([*fields, ("action", "create")])
    )
    assert created.status_code == 303, created.text[:800]
    a = int(created.headers["location"].split("/")[2])
    body = (await c["ivo"].get(f"/api/v1/assignments/{a}")).json()
    assert body["phase"] == "draft" and len(body["questions"]) == 5
    assert body["rubric"]["source"] == "Mikulincer & Shaver (2019)"
    assert body["rubric"]["components"][0]["label"] == "The therapist as a secure base"
    assert [x["question"] for x in body["rubric"]["components"]] == [1, 2, 3, 5]
    assert body["sample_paper"].startswith("The role of the therapist")


async def test_parse_problems_show_at_their_lines_and_can_be_fixed_on_the_page(
    people: People, client: httpx.AsyncClient
) -> None:
    c = await _staff(people, client)
    broken = "References\n\nTitle\n\nA question?\n"
    refused = await c["ivo"].post(
        "/cohorts/psy/assignments/new", files={"file": ("a.txt", broken.encode(), "text/plain")}
    )
    assert refused.status_code == 422
    assert 'href="#src-line-1">Line 1</a>' in refused.text
    assert 'id="src-line-1" class="bad-line"' in refused.text
    token = c["ivo"].headers["X-CSRF-Token"]
    assert f'name="csrf_token" value="{token}"' in refused.text
    fixed = await c["ivo"].post(
        "/cohorts/psy/assignments/new", data={"source": "Title\n\nA question?\n", "kind": "text"}
    )
    assert fixed.status_code == 200 and "1 question" in fixed.text


async def test_a_refused_create_keeps_the_input_the_token_and_says_why_at_the_field(
    people: People, client: httpx.AsyncClient
) -> None:
    c = await _staff(people, client)
    sent = {
        "title": "",
        "question": ["Kept question?", ""],
        "references": "Bowlby, J. (1988). A secure base.",
        "reviews_per_paper": "3",
        "stance_source": "1",
        "component_key": [""],
        "component_label": ["  "],
        "component_description": ["Looked for"],
        "component_question": ["1"],
        "action": "create",
    }
    refused = await c["ivo"].post("/cohorts/psy/assignments/create", data=sent)
    assert refused.status_code == 422
    token = c["ivo"].headers["X-CSRF-Token"]
    assert f'name="csrf_token" value="{token}"' in refused.text
    assert 'id="title-error" class="field-error">give the assignment a title' in refused.text
    assert 'aria-invalid="true"' in refused.text and "Kept question?" in refused.text
    assert "give the component a label" in refused.text and "Looked for" in refused.text
    assert (await c["ivo"].get("/api/v1/cohorts/psy/assignments")).json() == []
    # Moving and adding rows re-renders (nothing stored), with the moved row focused.
    moved = await c["ivo"].post(
        "/cohorts/psy/assignments/create",
        data={**sent, "question": ["First?", "Second?"], "action": "q-down:0"},
    )
    assert moved.status_code == 200
    assert moved.text.index("Second?") < moved.text.index("First?")
    assert re.search(r'value="q-up:1"[^>]*autofocus', moved.text)


async def _created(c: dict[str, httpx.AsyncClient], fixture_text: str) -> int:
    made = await c["ivo"].post(
        "/api/v1/cohorts/psy/assignments",
        content=fixture_text,
        headers={"content-type": "text/plain"},
    )
    assert made.status_code == 201
    return int(made.json()["id"])


async def test_questions_are_edited_in_draft_and_locked_with_a_reason_once_open(
    people: People, client: httpx.AsyncClient, fixture_text: str
) -> None:
    c = await _staff(people, client)
    a = await _created(c, fixture_text)
    page = await c["ivo"].get(f"/assignments/{a}/questions")
    assert page.status_code == 200 and "Move question 1 down" in page.text
    body = (await c["ivo"].get(f"/api/v1/assignments/{a}")).json()
    ids = [str(q["id"]) for q in body["questions"]]
    prompts = [q["prompt"] for q in body["questions"]]
    data: list[tuple[str, Any]] = [("version", str(body["version"])), ("action", "save")]
    for qid, prompt in zip(reversed(ids), reversed(prompts), strict=True):
        data += [("question_id", qid), ("question", prompt)]
    saved = await c["ivo"].post(f"/assignments/{a}/questions", data=_as_form(data))
    assert saved.status_code == 303
    after = (await c["ivo"].get(f"/api/v1/assignments/{a}")).json()
    assert [q["prompt"] for q in after["questions"]] == list(reversed(prompts))
    stale = await c["ivo"].post(f"/assignments/{a}/questions", data=_as_form(data))
    assert stale.status_code == 409 and "since you loaded it" in stale.text

    opened = await c["ivo"].post(
        f"/assignments/{a}/phase", data={"phase": "open", "confirmed": "yes"}
    )
    assert opened.status_code == 303
    locked = await c["ivo"].get(f"/assignments/{a}/questions")
    assert "The questions are fixed: the assignment is open" in locked.text
    assert "Move question" not in locked.text
    api = await c["ivo"].put(
        f"/api/v1/assignments/{a}/questions",
        json={"version": after["version"] + 1, "questions": [{"prompt": "x?"}]},
    )
    assert api.status_code == 409 and "questions are fixed" in api.json()["detail"]


async def test_the_rubric_page_picks_the_source_from_the_references_and_saves(
    people: People, client: httpx.AsyncClient, fixture_text: str
) -> None:
    c = await _staff(people, client)
    a = await _created(c, fixture_text)  # the plain-text API import: no rubric yet
    page = await c["ivo"].get(f"/assignments/{a}/rubric")
    assert page.status_code == 200
    # The first reference is proposed; the scale is shown.
    assert re.search(r'<option value="1" selected>Mikulincer &amp; Shaver \(2019\)', page.text)
    assert "5 · strongly agrees" in page.text and "not addressed" in page.text
    version = (await c["ivo"].get(f"/api/v1/assignments/{a}")).json()["version"]
    data = {
        "version": str(version), "stance_source": "1", "action": "save",
        "component_key": ["", ""], "component_label": ["Secure base", ""],
        "component_description": ["Reliable presence", ""], "component_question": ["1", ""],
    }  # fmt: skip
    saved = await c["ivo"].post(f"/assignments/{a}/rubric", data=data)
    assert saved.status_code == 303
    rubric = (await c["ivo"].get(f"/api/v1/assignments/{a}")).json()["rubric"]
    assert rubric == {
        "source": "Mikulincer & Shaver (2019)",
        "components": [{"key": "secure-base", "label": "Secure base",
                        "description": "Reliable presence", "question": 1}],
    }  # fmt: skip
    stale = await c["ivo"].post(f"/assignments/{a}/rubric", data=data)
    assert stale.status_code == 409 and "Secure base" in stale.text
    bad = await c["ivo"].put(
        f"/api/v1/assignments/{a}/rubric",
        json={"version": version + 1, "source_reference": 42,
              "components": [{"label": "X", "question": 9}]},
    )  # fmt: skip
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"stance_source", "components[0].question"}
    assert (await c["ada"].get(f"/assignments/{a}/rubric")).status_code == 404


async def test_copy_to_another_cohort_on_the_page_and_in_the_api(
    people: People, client: httpx.AsyncClient, fixture_text: str
) -> None:
    c = await _staff(people, client)
    a = await _created(c, fixture_text)
    page = await c["ivo"].get(f"/assignments/{a}/questions")
    assert '<option value="next">NEXT</option>' in page.text
    refused = await c["ivo"].post(f"/assignments/{a}/copy", data={"cohort": ""})
    assert refused.status_code == 422 and 'id="cohort-error"' in refused.text
    copied = await c["ivo"].post(f"/assignments/{a}/copy", data={"cohort": "next"})
    assert copied.status_code == 303
    listed = (await c["ivo"].get("/api/v1/cohorts/next/assignments")).json()
    assert [x["question_count"] for x in listed] == [5]
    api = await c["ivo"].post(f"/api/v1/assignments/{a}/copies", json={"cohort": "next"})
    assert api.status_code == 201 and api.json()["cohort"] == "next"
    assert api.headers["location"] == f"/api/v1/assignments/{api.json()['id']}"
    assert (
        await c["ada"].post(f"/api/v1/assignments/{a}/copies", json={"cohort": "next"})
    ).status_code == 404
