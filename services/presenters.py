"""The identity gate: the only code that turns a person into what a viewer sees.

Whether a viewer may know who someone is, is policy's question (`policy.can_see_author`,
`policy.can_curate_exemplars`, ...); how the answer reads — a real name, a discussion
alias, a paper code, a reviewer number, an exemplar's attribution — is decided here and
nowhere else (a structural test, tests/test_identity_gate.py, fails when another module
formats a pseudonym).

Each person has one pseudonym per context, and a context's pseudonym appears only there
(SECURITY.md, "Linkage"):

| context                  | what a viewer who may not know the person sees | function             |
|--------------------------|------------------------------------------------|----------------------|
| the assignment's         | the alias ("Anonymous Quiet Heron") on         | discussion_author    |
| discussion               | anonymous posts; never on a named post         | discussion_author_row|
| review                   | "Paper K7Q2", to the paper's reviewers & staff | paper_label          |
| feedback                 | "Reviewer 2", random per paper, to the paper's | reviewer_label       |
|                          | author and staff                               |                      |
| exemplar gallery         | "A classmate", or the name the author          | exemplar_attribution |
|                          | consented to for that one work                 |                      |
| staff's stance analytics | "Reviewer ab12f0", per assignment, staff only  | reviewer_agreement   |

An exemplar never carries the discussion alias, a paper code or a reviewer number: each of
those would link the gallery's copy to the same person's other work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from services import policy
from services.models import Attribution
from services.policy import Actor, DiscussionScope
from services.views import AuthorView

ANONYMOUS_CLASSMATE = "Anonymous classmate"  # an anonymous post whose alias is missing
A_CLASSMATE = "A classmate"  # an exemplar without the author's consent to a name
FROM_THE_ASSIGNMENT = "From the assignment"  # the sample paper, written by nobody here
AUTHOR = "author"  # the author's row in a reveal
FORMER_MEMBER = "Former member"  # an erased person's named work (services/people.py)


# --- the discussion ------------------------------------------------------------------------


def discussion_author(
    actor: Actor,
    scope: DiscussionScope,
    *,
    author_id: int,
    anonymous: bool,
    display_name: str,
    alias: str | None,
) -> AuthorView:
    """A post's author as this viewer may know them: the name, or only the alias."""
    return AuthorView(
        **discussion_author_row(
            actor,
            scope,
            {
                "author_id": author_id,
                "anonymous": anonymous,
                "display_name": display_name,
                "alias": alias,
            },
        )
    )


def discussion_author_row(
    actor: Actor, scope: DiscussionScope, row: Mapping[str, Any]
) -> dict[str, Any]:
    """`discussion_author` for a plain row (the thread's hot path renders hundreds): `row`
    has author_id, anonymous, display_name and alias. Those who may know the author of an
    anonymous post (its author, staff) see the name and, beside it, the alias classmates see;
    everyone else sees the alias alone."""
    author_id = row["author_id"]
    is_you = actor.user_id is not None and actor.user_id == author_id
    if not row["anonymous"]:
        return {"name": row["display_name"], "anonymous": False, "is_you": is_you, "alias": None}
    alias = row["alias"] or ANONYMOUS_CLASSMATE
    if policy.can_see_author(actor, scope, author_id=author_id, anonymous=True):
        return {"name": row["display_name"], "anonymous": True, "is_you": is_you, "alias": alias}
    return {"name": alias, "anonymous": True, "is_you": False, "alias": None}


def discussion_name(
    actor: Actor,
    scope: DiscussionScope,
    *,
    author_id: int,
    anonymous: bool,
    display_name: str,
    alias: str | None,
) -> str:
    """The one name a viewer sees on a post (exports, notices): the author's, unless the
    post is anonymous and the viewer may not know who wrote it; then the alias."""
    if policy.can_see_author(actor, scope, author_id=author_id, anonymous=anonymous):
        return display_name
    return alias or ANONYMOUS_CLASSMATE


# --- review and feedback -------------------------------------------------------------------


def paper_label(code: str) -> str:
    """A paper as its reviewers and staff know it in review."""
    return f"Paper {code}"


def reviewer_label(number: int) -> str:
    """A reviewer as the paper's author and staff know them (numbered at random per paper)."""
    return f"Reviewer {number}"


def reviewer_agreement(seed: str, user_id: int) -> str:
    """A reviewer in staff's agreement table: stable within one assignment (salted with its
    allocation seed), unlinkable across assignments, and shown nowhere else."""
    digest = hashlib.sha256(f"{seed}:reviewer:{user_id}".encode()).hexdigest()
    return f"Reviewer {digest[:6]}"


def revealed_role(number: int | None) -> str:
    """The row of a reveal: the author, or the reviewer by the number staff already see."""
    return AUTHOR if number is None else reviewer_label(number)


# --- exemplars -----------------------------------------------------------------------------


def exemplar_attribution(attribution: Attribution, name: str | None) -> str:
    """How the gallery labels an exemplar: the author's name only after they consented to
    it for this work, otherwise "A classmate" — never an alias, code or number of another
    context."""
    if attribution is Attribution.assignment:
        return FROM_THE_ASSIGNMENT
    if attribution is Attribution.named and name:
        return name
    return A_CLASSMATE
