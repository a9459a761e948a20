"""Per-assignment pseudonyms ("Anonymous Heron") for anonymous discussion posts.

An alias is drawn at random (never from the user id or the time), is stable within one
assignment and unique there, and is drawn afresh in every assignment, so two assignments'
aliases cannot be linked to each other.
"""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.models import Alias

ADJECTIVES = (
    "Amber", "Azure", "Bold", "Brave", "Bright", "Calm", "Clever", "Coral", "Crimson", "Curious",
    "Daring", "Gentle", "Golden", "Hazel", "Honest", "Indigo", "Jade", "Keen", "Kind", "Lively",
    "Lucid", "Mellow", "Misty", "Nimble", "Noble", "Olive", "Patient", "Quiet", "Rapid", "Rosy",
    "Russet", "Sage", "Silver", "Steady", "Sunny", "Swift", "Tidy", "Velvet", "Warm", "Witty",
)  # fmt: skip
ANIMALS = (
    "Albatross", "Badger", "Beaver", "Bison", "Crane", "Dolphin", "Falcon", "Ferret", "Finch",
    "Fox", "Gazelle", "Gecko", "Heron", "Ibis", "Jackal", "Koala", "Lemur", "Lynx", "Marten",
    "Moose", "Newt", "Ocelot", "Otter", "Owl", "Panda", "Pelican", "Puffin", "Quail", "Raven",
    "Robin", "Salmon", "Seal", "Stork", "Swan", "Tapir", "Tern", "Toucan", "Walrus", "Wombat",
    "Yak",
)  # fmt: skip
PREFIX = "Anonymous"


def draw_name() -> str:
    return f"{PREFIX} {secrets.choice(ADJECTIVES)} {secrets.choice(ANIMALS)}"


async def alias_for(session: AsyncSession, *, assignment_id: int, user_id: int) -> Alias:
    """The person's alias in this assignment, drawn on first use."""
    found = (
        await session.execute(
            select(Alias).where(Alias.assignment_id == assignment_id, Alias.user_id == user_id)
        )
    ).scalar_one_or_none()
    if found is not None:
        return found
    taken = set(
        (
            await session.execute(
                select(col(Alias.name)).where(Alias.assignment_id == assignment_id)
            )
        ).scalars()
    )
    for attempt in range(50):
        name = draw_name()
        if attempt >= 20:  # a crowded assignment: add a short random tag
            name = f"{name} {secrets.token_hex(2).upper()}"
        if name in taken:
            continue
        alias = Alias(assignment_id=assignment_id, user_id=user_id, name=name)
        try:
            # A savepoint: a concurrent writer may take the same name (or alias this person).
            async with session.begin_nested():
                session.add(alias)
                await session.flush()
        except IntegrityError:
            again = (
                await session.execute(
                    select(Alias).where(
                        Alias.assignment_id == assignment_id, Alias.user_id == user_id
                    )
                )
            ).scalar_one_or_none()
            if again is not None:
                return again
            taken.add(name)
            continue
        return alias
    raise RuntimeError("could not draw a free alias")  # pragma: no cover
