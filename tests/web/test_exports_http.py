"""Exports over HTTP and from the command line."""

from __future__ import annotations

import csv
import io
import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import phases
from services.db import transaction
from services.models import Phase, Role
from services.policy import Actor
from tests.conftest import TEST_SECRET, People
from tests.web.test_api_assignments import make_cohort
from tests.web.test_openapi import check, document


async def test_export_streams_as_an_attachment(
    client: httpx.AsyncClient, fixture_text: str
) -> None:
    await make_cohort(client)
    made = await client.post(
        "/api/v1/cohorts/psy/assignments", content=fixture_text.encode(),
        headers={"content-type": "text/plain"},
    )  # fmt: skip
    a = made.json()["id"]
    response = await client.get(f"/api/v1/assignments/{a}/exports/participation.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="peerboard-psy-{a}-participation.csv"'
    )
    header = next(csv.reader(io.StringIO(response.text)))
    assert header[:3] == ["name", "email", "subject"]
    # Both media types are in the OpenAPI document.
    doc = await document(client)
    check(doc, "/api/v1/assignments/{assignment}/exports/{kind}.{format}", "get", response)
    assert [h for h in header if h.startswith("posts q")] == [f"posts q{i}" for i in range(1, 6)]
    as_json = await client.get(f"/api/v1/assignments/{a}/exports/audit.json")
    assert as_json.status_code == 200 and isinstance(as_json.json(), list)
    check(doc, "/api/v1/assignments/{assignment}/exports/{kind}.{format}", "get", as_json)
    assert (await client.get(f"/api/v1/assignments/{a}/exports/nope.csv")).status_code == 404
    assert (await client.get(f"/api/v1/assignments/{a}/exports/posts.xlsx")).status_code == 404
    bad_view = await client.get(f"/api/v1/assignments/{a}/exports/posts.csv?view=god")
    assert bad_view.status_code == 422


def test_cli_export_writes_a_file_and_shows_progress(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "PEERBOARD_ENV": "production",
           "PEERBOARD_SECRET_KEY": TEST_SECRET}  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "web.cli", *args], capture_output=True, text=True, env=env,
            timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result

    from services.demo import fixture_text

    run("db", "upgrade")
    run("cohorts", "create", "psy", "--name", "PSY")
    document = tmp_path / "a.txt"
    document.write_text(fixture_text(), encoding="utf-8")
    run("assignments", "import", str(document), "--cohort", "psy")
    out = tmp_path / "audit.csv"
    result = run("export", "audit", "--assignment", "1", "--output", str(out))
    assert "exported 0 rows" in result.stderr
    assert out.read_text(encoding="utf-8").startswith("id,created_at,actor,action")
    stdout = run("export", "participation", "--assignment", "1", "--format", "json")
    assert stdout.stdout.strip() == "[\n]"


async def test_the_workspace_page_listens_for_live_completion(
    client: httpx.AsyncClient, fixture_text: str
) -> None:
    import re

    await make_cohort(client)
    made = await client.post(
        "/api/v1/cohorts/psy/assignments", content=fixture_text.encode(),
        headers={"content-type": "text/plain"},
    )  # fmt: skip
    a = made.json()["id"]
    page = await client.get(f"/assignments/{a}/workspace")
    assert page.status_code == 200
    # The whole workspace follows the assignment's changes (review completion among them).
    assert f'data-events="/api/v1/assignments/{a}/workspace/events"' in page.text
    nonce = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"])
    assert nonce and f'nonce="{nonce.group(1)}"' in page.text
    assert '<svg class="chart" role="img"' in page.text


async def test_a_student_downloads_the_discussion_as_they_read_it(
    client: httpx.AsyncClient,
    people: People,
    sessions: async_sessionmaker[AsyncSession],
    fixture_text: str,
) -> None:
    await make_cohort(client)
    made = await client.post(
        "/api/v1/cohorts/psy/assignments", content=fixture_text.encode(),
        headers={"content-type": "text/plain"},
    )  # fmt: skip
    a, question = made.json()["id"], made.json()["questions"][0]["id"]
    async with transaction(sessions) as session:
        await phases.change_phase(session, actor=Actor.system(), assignment_id=a, phase=Phase.open)
    author_name = "cn" + secrets.token_hex(5)  # a canary: shown as "Cn…", emailed at "cn…@"
    author = await people.member(author_name, "psy", Role.student)
    ben = await people.member("ben", "psy", Role.student)
    mona = await people.member("mona", "psy", Role.moderator)
    posted = await author.post(
        f"/api/v1/questions/{question}/threads",
        json={"title": "Quietly", "body": "Unsigned thoughts.", "anonymous": True},
    )
    assert posted.status_code == 201, posted.text
    url = f"/api/v1/assignments/{a}/exports/posts"

    response = await ben.get(f"{url}.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="peerboard-psy-{a}-posts-student.csv"'
    )
    (row,) = list(csv.DictReader(io.StringIO(response.text)))
    assert row["author"].startswith("Anonymous ") and row["author_email"] == ""
    for fmt, view in (("csv", "moderator"), ("json", "moderator"), ("json", "student")):
        asked = await ben.get(f"{url}.{fmt}?view={view}")
        assert asked.status_code == 200
        assert author_name not in asked.text.lower()
        assert asked.headers["content-disposition"].endswith(f'-posts-student.{fmt}"')
    for kind in ("reviews", "participation", "audit"):
        refused = await ben.get(f"/api/v1/assignments/{a}/exports/{kind}.csv")
        assert refused.status_code == 404
        assert author_name not in refused.text.lower()

    named = await mona.get(f"{url}.csv")
    assert named.headers["content-disposition"].endswith(f'-{a}-posts.csv"')
    assert f"{author_name}@uni.test" in named.text

    # The assignment page offers students the download; staff have the workspace's links.
    page = await ben.get(f"/assignments/{a}")
    assert 'class="discussion-download"' in page.text
    assert f'href="/api/v1/assignments/{a}/exports/posts.csv"' in page.text
    assert f'href="/api/v1/assignments/{a}/exports/posts.json"' in page.text
    staff_page = await mona.get(f"/assignments/{a}")
    assert staff_page.status_code == 200 and "discussion-download" not in staff_page.text
