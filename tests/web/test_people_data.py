"""People's own data (issue 15, item 10): a person downloads everything the service holds
about them, and an administrator erases a person, after which their name, e-mail and
subject appear nowhere while their work stays (named posts under "Former member",
anonymous ones under their alias), allocations heal and the exports still run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services import discussions, identity, people, presenters, websessions
from services.db import transaction
from services.errors import NotFound
from services.models import Alias, AuditEvent, Membership, Phase, ReviewTask, TaskStatus, User
from services.policy import Actor
from tests.conftest import client_for
from tests.review_support import (
    ISSUER,
    make_world,
    set_phase,
    submit_papers,
)
from tests.web.canary_support import canary

STUDENTS = ("ada", "ben", "chen", "dara", "eli")


async def _client(asgi: Any, sessions: async_sessionmaker[AsyncSession], uid: int) -> Any:
    async with transaction(sessions) as session:
        key, row = await websessions.create(
            session, policy=websessions.SessionPolicy(), user_id=uid
        )
    client = client_for(asgi)
    client.cookies.set("peerboard_session", key)
    client.headers["X-CSRF-Token"] = row.csrf_token
    return client


async def _world(sessions: async_sessionmaker[AsyncSession]) -> tuple[Any, dict[str, str], str]:
    """A review round under way, and a discussion where Ada writes one named and one
    anonymous thread. Ada's name, e-mail and subject are canaries."""
    ada = canary("ada")
    world = await make_world(
        sessions, students=STUDENTS, k=2, names={"ada": ada.capitalize()},
        subjects={"ada": f"sub-{ada}"},
    )  # fmt: skip
    await submit_papers(world, STUDENTS)
    await set_phase(world, Phase.review)
    async with transaction(sessions) as session:
        from services.models import Question

        question = await session.scalar(
            select(Question.id).where(Question.assignment_id == world.assignment_id)
        )
        assert question is not None
        actor = await world.actor(session, "ada")
        for title, anonymous in (("In my name", False), ("Quietly", True)):
            await discussions.create_thread(
                session, actor=actor, question_id=question, title=title,
                body=f"{title}: a secure base is reliable.", anonymous=anonymous,
            )  # fmt: skip
    return world, {"name": ada.capitalize(), "subject": f"sub-{ada}"}, ada


async def test_a_person_downloads_everything_held_about_them_and_nobody_elses(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world, ada, _ = await _world(sessions)
    client = await _client(asgi, sessions, world.users["ada"])
    response = await client.get("/api/v1/me/data")
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    data = response.json()
    assert data["profile"]["display_name"] == ada["name"]
    assert {m["role"] for m in data["memberships"]} == {"student"}
    shown = {p["thread_title"]: p["shown_as"] for p in data["posts"]}
    assert shown["In my name"] == ada["name"]
    assert shown["Quietly"].startswith("Anonymous ")  # the alias classmates saw
    assert data["papers"][0]["versions"][0]["body"]
    # Nobody else's identity: not the reviewers of her paper, not her classmates.
    async with transaction(sessions, write=False) as session:
        others = [
            u.display_name
            for u in (await session.execute(select(User))).scalars()
            if u.id != world.users["ada"]
        ]
    assert not any(name in response.text for name in others)
    await client.aclose()


async def test_erasing_a_person_removes_their_identity_everywhere_and_keeps_their_work(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world, ada, raw = await _world(sessions)
    async with transaction(sessions, write=False) as session:
        alias = await session.scalar(select(Alias.name).where(Alias.user_id == world.users["ada"]))
    assert alias
    async with transaction(sessions) as session:
        with pytest.raises(NotFound):  # only administrators erase people
            await people.erase_person(
                session, actor=Actor(user_id=world.users["ivo"]), issuer=ISSUER,
                subject=ada["subject"],
            )  # fmt: skip
    async with transaction(sessions) as session:
        done = await people.erase_person(
            session, actor=Actor.system(), issuer=ISSUER, subject=ada["subject"]
        )
    assert done.memberships_removed == 1 and done.posts_kept == 2
    uid = world.users["ada"]
    async with transaction(sessions, write=False) as session:
        user = await session.get(User, uid)
        assert user is not None
        assert (user.display_name, user.email) == (presenters.FORMER_MEMBER, None)
        assert not await identity.find_user(session, issuer=ISSUER, subject=ada["subject"])
        assert not (
            await session.execute(select(Membership).where(Membership.user_id == uid))
        ).first()
        live_tasks = (
            await session.execute(
                select(ReviewTask).where(
                    ReviewTask.reviewer_id == uid, ReviewTask.status != TaskStatus.withdrawn
                )
            )
        ).all()
        assert live_tasks == []  # her reviews went to others (allocations healed)
        tomb = await session.scalar(
            select(AuditEvent).where(
                col(AuditEvent.action) == "person.erase", col(AuditEvent.target_id) == str(uid)
            )
        )
        assert tomb is not None

    # Everything staff and a classmate can read: no trace of who she was; her work stays.
    received = b""
    for who in ("ivo", "ben"):
        client = await _client(asgi, sessions, world.users[who])
        a = world.assignment_id
        paths = [
            f"/assignments/{a}", f"/api/v1/assignments/{a}/exports/posts.json",
            "/api/v1/search?q=secure",
        ]  # fmt: skip
        if who == "ivo":
            paths += [f"/assignments/{a}/workspace", f"/api/v1/assignments/{a}/allocations"]
            paths += [
                f"/api/v1/assignments/{a}/exports/{kind}.csv"
                for kind in ("posts", "reviews", "participation", "audit")
            ]
        for path in paths:
            response = await client.get(path)
            assert response.status_code == 200, (who, path, response.text[:200])
            received += response.content
        threads = (await client.get("/api/v1/search?q=secure")).json()["hits"]
        for hit in threads:
            page = await client.get(f"/api/v1/threads/{hit['thread']}")
            received += page.content
            if who == "ben":
                shown = {page.json()["title"]: page.json()["opening"]["author"]["name"]}
                assert shown.get("In my name", presenters.FORMER_MEMBER) == (
                    presenters.FORMER_MEMBER
                )
                assert shown.get("Quietly", alias) == alias
        await client.aclose()
    for trace in (ada["name"], ada["subject"], raw, f"{raw}@"):
        assert trace.lower().encode() not in received.lower(), trace
    assert b"a secure base is reliable" in received.lower()


def test_the_command_line_erases_a_person(tmp_path: Path) -> None:
    db = tmp_path / "erase.db"
    env = {"DATABASE_URL": f"sqlite:///{db}", "PEERBOARD_ENV": "development", "PATH": "/usr/bin"}
    exe = [sys.executable, "-m", "web.cli"]
    root = Path(__file__).resolve().parents[2]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*exe, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip

    assert run("db", "upgrade").returncode == 0
    assert run("cohorts", "create", "psy", "--name", "PSY").returncode == 0
    granted = run("admin", "grant", "--issuer", ISSUER, "--subject", "s-1", "--cohort", "psy",
                  "--role", "student")  # fmt: skip
    assert granted.returncode == 0, granted.stderr
    exported = run("people", "export", "--issuer", ISSUER, "--subject", "s-1")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["memberships"][0]["cohort"] == "psy"
    erased = run("people", "erase", "--issuer", ISSUER, "--subject", "s-1", "--yes")
    assert erased.returncode == 0, erased.stderr
    assert "1 membership(s) removed" in erased.stdout
    again = run("people", "erase", "--issuer", ISSUER, "--subject", "s-1", "--yes")
    assert again.returncode != 0 and "no person" in again.stderr


async def test_signed_out_visitors_get_401(stranger: httpx.AsyncClient) -> None:
    assert (await stranger.get("/api/v1/me/data")).status_code == 401
