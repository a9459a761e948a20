"""Every benchmark under bench/ runs in its quick mode (tiny sizes, seconds), so one that
no longer runs fails here rather than on the day someone needs its figures. The figures
themselves are not checked: speed belongs to `make bench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import postgres_admin_dsn

ROOT = Path(__file__).resolve().parents[1]
BENCHES = sorted(p.name for p in (ROOT / "bench").glob("*_bench.py"))


def test_the_benchmarks_are_all_found() -> None:
    assert {"thread_bench.py", "sse_bench.py", "allocation_bench.py"} <= set(BENCHES)


@pytest.mark.parametrize("bench", BENCHES)
def test_the_benchmark_runs_in_quick_mode(bench: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / bench), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert done.stdout.strip(), "a benchmark prints its figures"


# The benchmarks that take `--database` (a PostgreSQL admin URL) run on it too.
ON_POSTGRES = ["sse_bench.py", "writers_bench.py"]


@pytest.mark.postgres
@pytest.mark.parametrize("bench", ON_POSTGRES)
def test_the_benchmark_runs_in_quick_mode_on_postgresql(bench: str) -> None:
    dsn = postgres_admin_dsn()
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / bench), "--quick", "--database", dsn],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "PostgreSQL" in done.stdout, done.stdout[-2000:]
