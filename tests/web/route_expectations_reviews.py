"""Authorization expectations for the reviews routes, merged into test_route_policy.py.

EXPECTATIONS maps (route name, method) to (request builder, {role: status}); the builders
(get, send, expect, same) and the roles are in tests/web/policy_support.py. `setup` adds this
area's objects to world.extras, made with the real services (use world.sessions).

Worlds: the main assignment is open (papers); `rev` is in review (cy joins so that each
paper has a spare reviewer); `fb` is in feedback with every review submitted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from sqlmodel import select

from services.db import transaction
from services.models import Paper, Phase, Review, ReviewExclusion, ReviewTask, Role
from tests.review_support import run_review_round
from tests.web.policy_support import expect, get, send

if TYPE_CHECKING:
    from tests.web.policy_support import World

MAIN = "/assignments/{w.assignment_id}"
REV = "/assignments/{w.extras[rev]}"
FB = "/assignments/{w.extras[fb]}"
API = "/api/v1"
STUDENT_ONLY_API = expect(404, 404, 200, 404, 404, 404)
STAFF_API = expect(404, 404, 404, 200, 200, 200)
MEMBER_API = expect(404, 404, 200, 200, 200, 200)
INSTRUCTOR_API = expect(404, 404, 404, 404, 200, 200)
REASON = "Checking a plagiarism report"

EXPECTATIONS: dict[tuple[str, str], tuple[Any, dict[str, int]]] = {
    # pages
    ("reviews:paper", "GET"): (get(f"{MAIN}/paper"), expect(303, 404, 200, 404, 404, 404)),
    ("reviews:paper:save", "POST"): (
        send("POST", f"{MAIN}/paper", data={"body": "My draft", "action": "save"}),
        expect(303, 404, 303, 404, 404, 404),
    ),
    ("reviews:tasks", "GET"): (get(f"{REV}/review-tasks"), expect(303, 404, 200, 200, 200, 200)),
    ("reviews:task", "GET"): (
        get("/review-tasks/{w.extras[task]}"),
        expect(303, 404, 200, 200, 200, 200),
    ),
    ("reviews:feedback", "GET"): (get(f"{FB}/feedback"), expect(303, 404, 200, 404, 404, 404)),
    ("reviews:rating", "POST"): (
        send("POST", "/reviews/{w.extras[review]}/rating", data={"rating": "4", "back": FB}),
        expect(303, 404, 303, 404, 404, 404),
    ),
    ("reviews:dashboard", "GET"): (
        get(f"{REV}/review-dashboard"),
        expect(303, 404, 404, 200, 200, 200),
    ),
    ("reviews:phase", "POST"): (
        send("POST", f"{MAIN}/phase", data={"phase": "review", "confirmed": "yes"}),
        expect(404, 404, 404, 404, 303, 303),
    ),
    ("reviews:allocate", "POST"): (
        send("POST", f"{REV}/allocate"),
        expect(404, 404, 404, 303, 303, 303),
    ),
    ("reviews:reveal", "POST"): (
        send(
            "POST",
            f"{REV}/reveal",
            data={"paper": "{w.extras[code]}", "target": "author", "reason": REASON},
        ),
        expect(404, 404, 404, 200, 200, 200),
    ),
    ("reviews:assign", "POST"): (
        send("POST", f"{REV}/review-dashboard/assign", data={"paper": "{w.extras[ada_paper]}"}),
        expect(404, 404, 404, 303, 303, 303),
    ),
    ("reviews:move", "POST"): (
        send("POST", f"{REV}/review-dashboard/move", data={"task": "{w.extras[task]}"}),
        expect(404, 404, 404, 303, 303, 303),
    ),
    ("reviews:conflicts", "GET"): (
        get(f"{REV}/review-conflicts"),
        expect(303, 404, 404, 200, 200, 200),
    ),
    ("reviews:exclude", "POST"): (
        send(
            "POST",
            f"{REV}/review-conflicts",
            data={"reviewer": "{w.extras[spare]}", "author": "{w.extras[ada_id]}"},
        ),
        expect(404, 404, 404, 303, 303, 303),
    ),
    ("reviews:exclude:lift", "POST"): (
        send(
            "POST",
            "/assignments/{w.extras[fb]}/review-conflicts/lift",
            data={"exclusion": "{w.extras[exclusion]}"},
        ),
        expect(404, 404, 404, 303, 303, 303),
    ),
    # API
    ("api:papers:mine", "GET"): (get(f"{API}{MAIN}/paper"), STUDENT_ONLY_API),
    ("api:papers:save", "PUT"): (
        send("PUT", f"{API}{MAIN}/paper", json={"body": "My draft"}),
        STUDENT_ONLY_API,
    ),
    ("api:allocations:list", "GET"): (get(f"{API}{REV}/allocations"), STAFF_API),
    ("api:allocations:run", "POST"): (send("POST", f"{API}{REV}/allocations"), STAFF_API),
    ("api:allocations:assign", "POST"): (
        send(
            "POST",
            f"{API}{REV}/allocations/manual",
            json={
                "paper": "{w.extras[ada_paper]}",
                "reviewer": "{w.extras[spare]}",
                "reason": REASON,
            },
        ),
        expect(404, 404, 404, 201, 201, 201),
    ),
    ("api:exclusions:create", "POST"): (
        send(
            "POST",
            f"{API}{REV}/exclusions",
            json={"reviewer": "{w.extras[spare]}", "author": "{w.extras[ada_id]}"},
        ),
        expect(404, 404, 404, 204, 204, 204),
    ),
    ("api:tasks:move", "POST"): (
        send(
            "POST",
            f"{API}/review-tasks/{{w.extras[task]}}/move",
            json={"reviewer": "{w.extras[move_to]}", "reason": REASON},
        ),
        STAFF_API,
    ),
    ("api:tasks:mine", "GET"): (get(f"{API}{REV}/review-tasks"), MEMBER_API),
    ("api:tasks:detail", "GET"): (get(f"{API}/review-tasks/{{w.extras[task]}}"), MEMBER_API),
    ("api:reviews:save", "PUT"): (
        send("PUT", f"{API}/review-tasks/{{w.extras[task]}}/review", json={"rationale": "r"}),
        expect(404, 404, 200, 409, 409, 409),
    ),
    ("api:reviews:reopen", "POST"): (
        send("POST", f"{API}/review-tasks/{{w.extras[fb_task]}}/reopen"),
        STAFF_API,
    ),
    ("api:feedback", "GET"): (get(f"{API}{FB}/feedback"), STUDENT_ONLY_API),
    ("api:reviews:rate", "POST"): (
        send("POST", f"{API}/reviews/{{w.extras[review]}}/rating", json={"rating": 4}),
        STUDENT_ONLY_API,
    ),
    ("api:stance", "GET"): (get(f"{API}{FB}/stance"), MEMBER_API),
    ("api:reveals:create", "POST"): (
        send(
            "POST",
            f"{API}{REV}/reveals",
            json={"paper": "{w.extras[code]}", "target": "reviewers", "reason": REASON},
        ),
        expect(404, 404, 404, 201, 201, 201),
    ),
    ("api:audit:list", "GET"): (get(f"{API}{REV}/audit"), INSTRUCTOR_API),
    ("api:phase:change", "PUT"): (
        send("PUT", f"{API}{MAIN}/phase", json={"phase": "review"}),
        INSTRUCTOR_API,
    ),
    ("api:reviews:events", "GET"): (get(f"{API}{REV}/review-events?poll=1"), MEMBER_API),
}


def _prepared(builder: Any) -> Any:
    """Build this area's objects only for this area's routes (they take a few hundred ms,
    and the matrix makes a fresh world for every route and role)."""

    async def build(world: World, client: httpx.AsyncClient) -> Any:
        if "rev" not in world.extras:
            await _prepare(world)
        return await builder(world, client)

    return build


for _key, (_builder, _codes) in list(EXPECTATIONS.items()):
    EXPECTATIONS[_key] = (_prepared(_builder), _codes)


async def setup(world: World) -> None:
    return None


async def _prepare(world: World) -> None:
    people = world.people
    await people.member("cy", "psy", Role.student)
    users = {n: people.users[n].id for n in ("ada", "ben", "cy")}
    assert all(users.values())
    ids: dict[str, int] = {n: uid for n, uid in users.items() if uid is not None}
    rev = await run_review_round(world.sessions, slug="psy", users=ids, k=1, until=Phase.review)
    fb = await run_review_round(world.sessions, slug="psy", users=ids, k=1, until=Phase.feedback)
    async with transaction(world.sessions, write=False) as session:

        async def task_of(assignment_id: int, name: str) -> ReviewTask:
            return (
                await session.execute(
                    select(ReviewTask).where(
                        ReviewTask.assignment_id == assignment_id,
                        ReviewTask.reviewer_id == ids[name],
                    )
                )
            ).scalar_one()

        async def paper_of(assignment_id: int, name: str) -> Paper:
            return (
                await session.execute(
                    select(Paper).where(
                        Paper.assignment_id == assignment_id, Paper.author_id == ids[name]
                    )
                )
            ).scalar_one()

        task = await task_of(rev, "ada")
        ada_paper = await paper_of(rev, "ada")
        ada_reviewer = (
            await session.execute(select(ReviewTask).where(ReviewTask.paper_id == ada_paper.id))
        ).scalar_one()
        spare = next(
            uid for n, uid in ids.items() if n != "ada" and uid != ada_reviewer.reviewer_id
        )
        reviewed = await session.get(Paper, task.paper_id)
        assert reviewed is not None
        move_to = next(uid for n, uid in ids.items() if n != "ada" and uid != reviewed.author_id)
        fb_ada_paper = await paper_of(fb, "ada")
        review = (
            await session.execute(
                select(Review)
                .join(ReviewTask, ReviewTask.id == Review.task_id)  # type: ignore[arg-type]
                .where(ReviewTask.paper_id == fb_ada_paper.id)
            )
        ).scalar_one()
        ben_paper = await paper_of(rev, "ben")
        world.extras.update(
            rev=rev,
            fb=fb,
            task=task.public_id,
            fb_task=(await task_of(fb, "ada")).public_id,
            ada_paper=ada_paper.public_id,
            ada_id=ids["ada"],
            spare=spare,
            move_to=move_to,
            review=review.public_id,
            code=ben_paper.code,
        )
    async with transaction(world.sessions) as session:
        # In the finished round, so that it constrains nothing the other routes do.
        kept = ReviewExclusion(assignment_id=fb, reviewer_id=ids["ben"], author_id=ids["cy"])
        session.add(kept)
        await session.flush()
        world.extras["exclusion"] = kept.id
