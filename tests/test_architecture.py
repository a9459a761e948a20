"""services/ stays framework-free: the import contract is checked, and can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def run_contract(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


def test_services_import_no_web_framework() -> None:
    result = run_contract(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_contract_catches_a_violation(tmp_path: Path) -> None:
    for name in ("services", "web", "migrations"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "services" / "leak.py").write_text("from starlette.requests import Request\n")
    result = run_contract(tmp_path)
    assert result.returncode != 0
    assert "services.leak -> starlette" in result.stdout
