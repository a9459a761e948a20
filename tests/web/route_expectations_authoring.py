"""Authorization expectations for the authoring routes (issue 12), merged into
test_route_policy.py.

`setup` adds a draft assignment to cohort psy (`draft`: its questions may still change;
students do not see it). Copies go to cohort `other`, which only the administrator manages,
so cohort staff of psy are told to pick a cohort they teach (422 on the page, 404 in the API).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services import assignments, cohorts, importing
from services.db import transaction
from services.policy import Actor
from tests.web.policy_support import expect, get, send

if TYPE_CHECKING:
    from tests.web.policy_support import World

DRAFT = "/assignments/{w.extras[draft]}"
API = "/api/v1"
STAFF_PAGE = expect(303, 404, 404, 200, 200, 200)
STAFF_FORM = expect(303, 404, 404, 303, 303, 303)
STAFF_API = expect(404, 404, 404, 200, 200, 200)
TEXT = "Secure base\n\nWhat is a secure base?\n\nReferences\n\nBowlby, J. (1988). A secure base.\n"

NEW = {
    "title": "Secure base",
    "question": "What is a secure base?",
    "references": "Bowlby, J. (1988).",
    "reviews_per_paper": "3",
    "stance_source": "1",
    "component_key": "",
    "component_label": "Secure base",
    "component_description": "",
    "component_question": "1",
    "action": "create",
}

EXPECTATIONS: dict[tuple[str, str], tuple[Any, dict[str, int]]] = {
    ("authoring:new", "GET"): (get("/cohorts/psy/assignments/new"), STAFF_PAGE),
    ("authoring:read", "POST"): (
        send("POST", "/cohorts/psy/assignments/new", data={"source": TEXT, "kind": "text"}),
        STAFF_PAGE,
    ),
    ("authoring:create", "POST"): (
        send("POST", "/cohorts/psy/assignments/create", data=NEW),
        STAFF_FORM,
    ),
    ("authoring:questions", "GET"): (get(f"{DRAFT}/questions"), STAFF_PAGE),
    ("authoring:questions:save", "POST"): (
        send(
            "POST",
            f"{DRAFT}/questions",
            data={"version": "1", "question_id": "", "question": "Only this?", "action": "save"},
        ),
        STAFF_FORM,
    ),
    ("authoring:rubric", "GET"): (get(f"{DRAFT}/rubric"), STAFF_PAGE),
    ("authoring:rubric:save", "POST"): (
        send(
            "POST", f"{DRAFT}/rubric", data={"version": "1", "stance_source": "1", "action": "save"}
        ),
        STAFF_FORM,
    ),
    ("authoring:copy", "POST"): (
        send("POST", f"{DRAFT}/copy", data={"cohort": "other"}),
        expect(303, 404, 404, 422, 422, 303),
    ),
    ("api:assignments:questions", "PUT"): (
        send(
            "PUT",
            f"{API}{DRAFT}/questions",
            json={"version": 1, "questions": [{"prompt": "Only this?"}]},
        ),
        STAFF_API,
    ),
    ("api:assignments:rubric", "PUT"): (
        send("PUT", f"{API}{DRAFT}/rubric", json={"version": 1, "source_reference": 1}),
        STAFF_API,
    ),
    ("api:assignments:copy", "POST"): (
        send("POST", f"{API}{DRAFT}/copies", json={"cohort": "other"}),
        expect(404, 404, 404, 404, 404, 201),
    ),
}


async def setup(world: World) -> None:
    system = Actor.system()
    async with transaction(world.sessions) as session:
        cohort = await cohorts.get_cohort(session, actor=system, slug="psy")
        made = await assignments.import_assignment(
            session, actor=system, cohort=cohort, draft=importing.parse_assignment_text(TEXT)
        )
        world.extras["draft"] = made.id
