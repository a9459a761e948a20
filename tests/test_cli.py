"""The `peerboard` command, run for real in a subprocess against a SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET


def peerboard(*args: str, db: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "PEERBOARD_ENV": "production",
        "PEERBOARD_SECRET_KEY": TEST_SECRET,
    }
    result = subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "cli.db"
    peerboard("db", "upgrade", db=path)
    return path


def test_help_lists_every_command(tmp_path: Path) -> None:
    out = peerboard("--help", db=tmp_path / "x.db").stdout
    for command in ("serve", "demo", "db", "cohorts", "assignments"):
        assert command in out
    assert "upgrade" in peerboard("db", "--help", db=tmp_path / "x.db").stdout
    assert "import" in peerboard("assignments", "--help", db=tmp_path / "x.db").stdout


def test_create_a_cohort_and_import_the_fixture_as_json(db: Path, tmp_path: Path) -> None:
    from services.demo import fixture_text

    assert (
        "created cohort psy-612"
        in peerboard("cohorts", "create", "psy-612", "--name", "PSY 612", db=db).stdout
    )
    document = tmp_path / "secure-base.txt"
    document.write_text(fixture_text(), encoding="utf-8")
    out = peerboard("assignments", "import", str(document), "--cohort", "psy-612", "--json", db=db)
    created = json.loads(out.stdout)
    assert created["id"] == 1
    assert created["title"] == "Reflect On The Ways You Have Been A Secure Base For Your Clients"
    assert [q["position"] for q in created["questions"]] == [1, 2, 3, 4, 5]
    assert created["rubric"] == {"source": None, "components": []}


def test_import_structured_toml(db: Path, tmp_path: Path) -> None:
    peerboard("cohorts", "create", "psy", "--name", "PSY", db=db)
    document = tmp_path / "a.toml"
    document.write_text(
        'title = "TOML assignment"\n'
        'questions = ["One?", "Two?"]\n'
        "[rubric]\n"
        'source = "Mikulincer & Shaver (2019)"\n'
        "[[rubric.components]]\n"
        'label = "The therapist as a secure base"\n',
        encoding="utf-8",
    )
    created = json.loads(
        peerboard("assignments", "import", str(document), "--cohort", "psy", "--json", db=db).stdout
    )
    assert [q["prompt"] for q in created["questions"]] == ["One?", "Two?"]
    assert created["rubric"]["components"][0]["key"] == "the-therapist-as-a-secure-base"


def test_an_unparsable_file_exits_non_zero_with_the_reason_and_imports_nothing(
    db: Path, tmp_path: Path
) -> None:
    peerboard("cohorts", "create", "psy", "--name", "PSY", db=db)
    document = tmp_path / "broken.txt"
    document.write_text("Just A Title\n", encoding="utf-8")
    result = peerboard(
        "assignments", "import", str(document), "--cohort", "psy", db=db, check=False
    )
    assert result.returncode != 0
    assert "broken.txt: line" in result.stderr
    assert "nothing was imported" in result.stderr

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"title": "Good", "questions": ["Q?"]}), encoding="utf-8")
    created = json.loads(
        peerboard("assignments", "import", str(good), "--cohort", "psy", "--json", db=db).stdout
    )
    assert created["id"] == 1  # the refused import left no row behind


def test_unknown_cohort_and_duplicate_cohort_are_clear_errors(db: Path, tmp_path: Path) -> None:
    document = tmp_path / "a.json"
    document.write_text(json.dumps({"title": "T", "questions": ["Q?"]}), encoding="utf-8")
    missing = peerboard(
        "assignments", "import", str(document), "--cohort", "nope", db=db, check=False
    )
    assert missing.returncode != 0 and "No such cohort" in missing.stderr
    peerboard("cohorts", "create", "psy", "--name", "PSY", db=db)
    again = peerboard("cohorts", "create", "psy", "--name", "PSY", db=db, check=False)
    assert again.returncode != 0 and "already exists" in again.stderr


def test_production_settings_without_a_secret_are_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PEERBOARD_SECRET_KEY"}
    env |= {"PEERBOARD_ENV": "production", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "web.cli", "db", "upgrade"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "PEERBOARD_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_downgrade_and_upgrade(db: Path) -> None:
    assert "base" in peerboard("db", "downgrade", "base", db=db).stdout
    peerboard("db", "upgrade", db=db)
    peerboard("cohorts", "create", "after", "--name", "After", db=db)


def test_admin_grant_before_first_sign_in(db: Path) -> None:
    peerboard("cohorts", "create", "psy", "--name", "PSY", db=db)
    out = peerboard(
        "admin", "grant", "--issuer", "https://login.uni.example", "--subject", "ivo-123",
        "--cohort", "psy", "--role", "instructor", db=db,
    ).stdout  # fmt: skip
    assert "granted instructor in cohort psy to ivo-123" in out
    first = peerboard(
        "admin", "grant", "--issuer", "https://login.uni.example", "--subject", "root-1",
        "--role", "administrator", db=db,
    ).stdout  # fmt: skip
    assert "service-wide" in first
    wrong = peerboard(
        "admin", "grant", "--issuer", "https://x", "--subject", "s", "--role", "student",
        db=db, check=False,
    )  # fmt: skip
    assert wrong.returncode != 0 and "needs --cohort" in wrong.stderr

    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT u.subject, u.is_administrator, m.role FROM users u "
            "LEFT JOIN memberships m ON m.user_id = u.id ORDER BY u.id"
        ).fetchall()
    assert rows == [("ivo-123", 0, "instructor"), ("root-1", 1, None)]
