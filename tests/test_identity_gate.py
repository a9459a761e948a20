"""One identity gate: services/presenters.py is the only code that formats a pseudonym
(a discussion alias's fallback, "Paper K7Q2", "Reviewer N", an exemplar's attribution).

The scan reads every module of services/ and web/ and every template, and fails on a string
that builds one of those labels anywhere else; a second test shows the scan finds them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATE = ROOT / "services" / "presenters.py"
# The start of a label that names a person in one context (f-strings and concatenations).
LABEL_START = re.compile(r"^(Reviewer|Paper|Anonymous) $")
# Whole labels that stand for a person (fallbacks and attributions).
LABELS = {"A classmate", "Anonymous classmate", "From the assignment", "Former member"}
# Templates: a label built from a variable ("Reviewer {{ n }}", "Paper {{ code }}"), not a
# sentence about a time ("Paper {{ due|deadline }}").
TEMPLATE_LABEL = re.compile(r"\b(Reviewer|Paper|Anonymous)\s*\{\{(?![^}]*\|\s*(deadline|when))")


def offences_in_source(source: str) -> list[str]:
    """What in this Python source formats a pseudonym."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if (
                isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and LABEL_START.match(first.value)
                and len(node.values) > 1
            ):
                found.append(f"line {node.lineno}: f-string {first.value!r}…")
        elif (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Add)
            and isinstance(node.left, ast.Constant)
            and isinstance(node.left.value, str)
            and LABEL_START.match(node.left.value)
        ):
            found.append(f"line {node.lineno}: {node.left.value!r} + …")
        elif isinstance(node, ast.Constant) and node.value in LABELS:
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def python_modules() -> list[Path]:
    return sorted(
        p for folder in ("services", "web") for p in (ROOT / folder).rglob("*.py") if p != GATE
    )


def test_only_the_presenters_module_formats_a_pseudonym() -> None:
    offences = {
        str(path.relative_to(ROOT)): found
        for path in python_modules()
        if (found := offences_in_source(path.read_text(encoding="utf-8")))
    }
    for template in sorted((ROOT / "web" / "templates").rglob("*.html")):
        lines = template.read_text(encoding="utf-8").splitlines()
        found = [f"line {i}" for i, line in enumerate(lines, 1) if TEMPLATE_LABEL.search(line)]
        if found:
            offences[str(template.relative_to(ROOT))] = found
    assert offences == {}, "format pseudonyms in services/presenters.py only"


def test_the_scan_finds_each_way_of_formatting_one() -> None:
    assert offences_in_source('x = f"Reviewer {n}"') == ["line 1: f-string 'Reviewer '…"]
    assert offences_in_source('x = f"Paper {code}"')
    assert offences_in_source('x = "Paper " + code')
    assert offences_in_source('x = alias or "A classmate"')
    assert offences_in_source('x = f"Reviewers: {n}"') == []  # a sentence, not a label
    assert TEMPLATE_LABEL.search("<td>Reviewer {{ t.number }}</td>")
    assert not TEMPLATE_LABEL.search("<span>Paper {{ a.due|deadline(zone) }}</span>")
    assert GATE.exists() and offences_in_source(GATE.read_text(encoding="utf-8"))
