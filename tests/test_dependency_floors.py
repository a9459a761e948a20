"""The versions actually installed meet the security floors of SECURITY.md (known
advisories 2023-2026). pip-audit (`make audit`) needs PyPI's vulnerability API, which this
machine cannot reach, so the floors are checked here against the installed distributions."""

from __future__ import annotations

from importlib.metadata import version

import pytest

FLOORS = {
    "starlette": (1, 3, 1),
    "python-multipart": (0, 0, 31),
    "authlib": (1, 7, 2),
    "jinja2": (3, 1, 6),
    "nh3": (0, 3, 7),
    "markdown-it-py": (4, 2),
    "h11": (0, 16, 0),
    "redis": (5,),
    # sse-starlette (>= 3.7.0 in SECURITY.md) is not a dependency: the live streams are
    # web/live.py's own lean ASGI response, with its own heartbeat and send timeout.
}


def parse(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


@pytest.mark.parametrize(("package", "floor"), sorted(FLOORS.items()))
def test_installed_version_meets_the_floor(package: str, floor: tuple[int, ...]) -> None:
    assert parse(version(package)) >= floor, f"{package} {version(package)} is below {floor}"


def test_bleach_is_not_used() -> None:
    from importlib.util import find_spec

    assert find_spec("bleach") is None  # SECURITY.md: nh3, never bleach
