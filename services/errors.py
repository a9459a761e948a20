"""Typed domain errors with stable codes.

Services raise these; the web layer maps them to HTTP in one place (``web/errors.py``)
and the CLI prints their message. The ``code`` is part of the API contract: clients may
branch on it, so never rename one.

    DomainError                     code            HTTP
    ├── NotFound                    not_found       404  (also "not allowed to see")
    ├── PermissionDenied            forbidden       403  (only where existence is not secret)
    ├── Conflict                    conflict        409
    │   ├── AlreadyExists           already_exists  409
    │   ├── StaleVersion            stale_version   409  (carries current_version)
    │   └── ConfirmationRequired    confirmation_required 409  (carries consequences)
    └── Invalid                     invalid         422  (carries per-field problems)
        └── ImportRejected          import_rejected 422  (carries line-located problems)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a field path or a line) and why."""

    message: str
    field: str | None = None
    line: int | None = None

    def describe(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(self.field)
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.line is not None:
            out["line"] = self.line
        return out


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    code = "domain_error"
    title = "Request could not be completed"

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        self.message = message or self.title
        # The input field the error is about, if one is: a page shows the message beside it.
        self.field = field
        super().__init__(self.message)


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"


class PermissionDenied(DomainError):
    code = "forbidden"
    title = "Not allowed"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class AlreadyExists(Conflict):
    code = "already_exists"
    title = "Already exists"


class StaleVersion(Conflict):
    """An edit based on an older version than the one stored (optimistic concurrency): the
    one error for every versioned thing, carrying the version to reload."""

    code = "stale_version"
    title = "Changed since you loaded it"

    def __init__(self, current_version: int, *, what: str = "this") -> None:
        self.current_version = current_version
        super().__init__(
            f"Someone changed {what} since you loaded it (it is now version "
            f"{current_version}). Reload it, then make your change again."
        )


class ConfirmationRequired(Conflict):
    """A change that would undo or reopen work people have handed in: refused until asked
    again with explicit confirmation, saying what it would do (`consequences`)."""

    code = "confirmation_required"
    title = "Confirmation required"

    def __init__(
        self, message: str, *, consequences: Sequence[str], field: str | None = None
    ) -> None:
        self.consequences = list(consequences)
        super().__init__(message, field=field)


class Invalid(DomainError):
    code = "invalid"
    title = "Invalid input"

    def __init__(self, message: str | None = None, problems: Sequence[Problem] = ()) -> None:
        self.problems: list[Problem] = list(problems)
        if message is None and self.problems:
            message = "; ".join(p.describe() for p in self.problems)
        super().__init__(message)


class ImportRejected(Invalid):
    code = "import_rejected"
    title = "The document could not be imported"
