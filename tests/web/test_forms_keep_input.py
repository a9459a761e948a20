"""A form that fails comes back with what the person typed and the reason beside the field
(pages.keep_input), never a dead-end error page; phase buttons ask first and say what they
do; the workspace offers each person only the exports they may take."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import People
from tests.review_support import paper_text
from tests.web.test_review_dashboard_by_hand import allocation, in_review
from tests.web.test_reviews_api import cohort_with_people

REASON = "The author asked me to check a plagiarism report."


def field_error(html: str, field_id: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]*)</p>', html)
    assert found is not None, f"no error beside #{field_id}"
    return found.group(1)


async def test_a_mistyped_reveal_code_keeps_the_reason_and_says_what_is_wrong(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c, _ = await in_review(people, sessions)
    page = await c["mona"].post(
        f"/assignments/{a}/reveal", data={"paper": "ZZZZ", "target": "reviewers", "reason": REASON}
    )
    assert page.status_code == 422
    assert "<h1>Review dashboard</h1>" in page.text
    assert "ZZZZ" in field_error(page.text, "reveal-paper")
    assert f">{REASON}</textarea>" in page.text
    assert '<option value="reviewers" selected>' in page.text
    assert 'id="reveal-paper" name="paper"' in page.text and 'aria-invalid="true"' in page.text
    log = (await c["ivo"].get(f"/api/v1/assignments/{a}/audit")).json()
    assert not [e for e in log if "reveal" in e["action"]]  # nothing was revealed


async def test_adding_a_reviewer_when_nobody_is_eligible_says_so_beside_the_paper(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c, _ = await in_review(people, sessions)
    paper = (await allocation(c["mona"], a))["papers"][0]
    url = f"/assignments/{a}/review-dashboard/assign"
    assert (await c["mona"].post(url, data={"paper": paper["id"]})).status_code == 303
    full = await c["mona"].post(url, data={"paper": paper["id"]})
    assert full.status_code == 409
    assert "No other student can take a review" in field_error(full.text, "assign-paper")
    assert f'<option value="{paper["id"]}" selected>' in full.text


async def test_a_bad_join_code_comes_back_on_the_home_page_with_the_code_typed(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    outsider = await people.client("olga")
    page = await outsider.post("/join", data={"code": "NOT-A-CODE"})
    assert page.status_code == 422
    assert "<h1>Your cohorts</h1>" in page.text
    assert 'value="NOT-A-CODE"' in page.text
    assert "not a valid join code" in field_error(page.text, "join-code")


async def test_a_blank_thread_title_keeps_the_body(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    question = (await c["ada"].get(f"/api/v1/assignments/{a}")).json()["questions"][0]["id"]
    body = "A long response I would hate to type again."
    page = await c["ada"].post(
        f"/questions/{question}/threads", data={"title": "   ", "body": body, "anonymous": "on"}
    )
    assert page.status_code == 422
    assert field_error(page.text, "title") == "The title must not be empty."
    assert f">{body}</textarea>" in page.text
    assert 'id="anonymous" checked' in page.text
    threads = (await c["ada"].get(f"/api/v1/questions/{question}/threads")).json()["threads"]
    assert threads == []


async def test_phase_buttons_say_what_they_do_and_a_step_back_over_submitted_work_needs_a_tick(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    base = f"/api/v1/assignments/{a}"
    for name in ("ada", "ben", "chen", "dara"):
        await c[name].put(f"{base}/paper", json={"body": paper_text(name), "submit": True})
    url = f"/assignments/{a}/phase"
    asked = await c["ivo"].post(url, data={"phase": "review"})
    assert asked.status_code == 200
    assert "Move forward to review?" in asked.text and "gets 2 reviewers" in asked.text
    assert (await c["ivo"].get(base)).json()["phase"] == "open"  # nothing moved yet
    moved = await c["ivo"].post(url, data={"phase": "review", "confirmed": "yes"})
    assert moved.status_code == 303
    assert (await c["ivo"].get(base)).json()["phase"] == "review"

    # One review submitted: stepping back needs the box ticked.
    task = (await c["ada"].get(f"{base}/review-tasks")).json()[0]["id"]
    from tests.web.test_reviews_api import review_body

    saved = await c["ada"].put(
        f"/api/v1/review-tasks/{task}/review", json=review_body(0, submit=True)
    )
    assert saved.status_code == 200, saved.text
    # The dashboard's buttons say which way they go and what each does.
    dashboard = (await c["ivo"].get(f"/assignments/{a}/review-dashboard")).text
    assert "Forward to feedback →" in dashboard and "← Back to open" in dashboard
    assert "A step back over submitted work (you confirm on the next page)" in dashboard
    assert "Authors read the 1 submitted review(s)" in dashboard
    asked = await c["ivo"].post(url, data={"phase": "open"})
    assert "Step back to open?" in asked.text
    assert "4 submitted paper(s) reopen" in asked.text
    assert "affects 4 submitted paper(s) and 1 submitted review(s)" in asked.text
    refused = await c["ivo"].post(url, data={"phase": "open", "confirmed": "yes"})
    assert refused.status_code == 409  # like the API's confirmation_required
    assert "1 submitted review" in field_error(refused.text, "confirm")
    assert 'aria-describedby="confirm-error" aria-invalid="true"' in refused.text
    assert (await c["ivo"].get(base)).json()["phase"] == "review"
    back = await c["ivo"].post(url, data={"phase": "open", "confirmed": "yes", "confirm": "on"})
    assert back.status_code == 303
    assert (await c["ivo"].get(base)).json()["phase"] == "open"


async def test_the_audit_export_is_offered_to_instructors_only(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    audit_link = f"/api/v1/assignments/{a}/exports/audit.csv"
    mona = await c["mona"].get(f"/assignments/{a}/workspace")
    ivo = await c["ivo"].get(f"/assignments/{a}/workspace")
    assert mona.status_code == ivo.status_code == 200
    assert audit_link not in mona.text and audit_link in ivo.text
    assert (await c["mona"].get(audit_link)).status_code == 404


async def test_the_flag_that_hides_a_thread_lands_the_flagger_on_the_question(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    question = (await c["ada"].get(f"/api/v1/assignments/{a}")).json()["questions"][0]["id"]
    made = await c["ada"].post(
        f"/api/v1/questions/{question}/threads", json={"title": "Spam", "body": "Buy now"}
    )
    assert made.status_code == 201, made.text
    thread = made.json()["id"]
    opening = (await c["ben"].get(f"/api/v1/threads/{thread}")).json()["opening"]["id"]
    for name in ("ben", "chen"):
        first = await c[name].post(f"/posts/{opening}/flag", data={"reason": "spam"})
        assert first.status_code == 303 and first.headers["location"] == f"/threads/{thread}"
    third = await c["dara"].post(f"/posts/{opening}/flag", data={"reason": "spam"})
    assert third.status_code == 303
    assert third.headers["location"] == f"/questions/{question}"
    landed = await c["dara"].get(third.headers["location"])
    assert landed.status_code == 200
    assert "it is hidden until then" in landed.text


async def test_only_instructors_are_asked_to_confirm_a_phase_change(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    asked = await c["mona"].post(f"/assignments/{a}/phase", data={"phase": "review"})
    assert asked.status_code == 404
