"""Exports over HTTP and from the command line."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET
from tests.web.test_api_assignments import make_cohort


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
    assert [h for h in header if h.startswith("posts q")] == [f"posts q{i}" for i in range(1, 6)]
    as_json = await client.get(f"/api/v1/assignments/{a}/exports/audit.json")
    assert as_json.status_code == 200 and isinstance(as_json.json(), list)
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
    assert f'data-events="/api/v1/assignments/{a}/review-events"' in page.text
    nonce = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"])
    assert nonce and f'nonce="{nonce.group(1)}"' in page.text
    assert '<svg class="chart" role="img"' in page.text
