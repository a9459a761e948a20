"""The mail outbox: what a person should hear about by e-mail, written in the transaction of
the change that causes it, and handed to a sender (services/mail.py) after commit.

A row's life:

    held ──(daily digest)──▶ digested          (carried by a "digest" row)
    pending ──claim──▶ sending ──▶ sent
       ▲                  │
       └──(retry, backoff)┴──▶ failed | bounced
    skipped                                     (the person chose "never")

Several sender processes share the table: a claim takes rows with `FOR UPDATE SKIP LOCKED`
on PostgreSQL (SQLite's write lock serializes claims) and leases them, so each message is
handed to exactly one sender; a sender that dies mid-send leaves a lease that expires and the
message is tried again (at least once, never twice in the normal course).
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import times
from services.db import lease_due, table_of
from services.errors import Invalid, NotFound, Problem
from services.models import (
    Cohort,
    MailMode,
    MailRecipient,
    Membership,
    NotificationPreference,
    OutboxMessage,
    User,
    utcnow,
)
from services.policy import Actor
from services.views import MailKindView, NotificationPreferencesView

Mode = MailMode


class Status(StrEnum):
    held = "held"  # waits for the daily digest
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"  # given up: a permanent refusal or too many attempts
    bounced = "bounced"  # the recipient's server refused the address
    digested = "digested"  # carried by a digest
    skipped = "skipped"  # the person chose "never" (kept: jobs dedupe on it)


@dataclass(frozen=True)
class MailKind:
    key: str
    label: str
    default: Mode


# What people hear about, and the defaults of the issue: immediately for replies to your own
# posts, reviews assigned to you and deadlines; a daily digest for threads you follow.
KINDS: dict[str, MailKind] = {
    k.key: k
    for k in (
        MailKind("reply", "Replies to your posts", Mode.immediately),
        MailKind("followed_thread", "New posts in threads you follow", Mode.digest),
        MailKind("review_assigned", "Reviews assigned to you", Mode.immediately),
        MailKind("reviews_received", "Your paper received its reviews", Mode.immediately),
        MailKind("deadline", "A deadline in the next 24 hours", Mode.immediately),
        MailKind("moderation", "Your post was hidden or restored", Mode.immediately),
        MailKind("exemplar", "Your work was nominated as an exemplar", Mode.immediately),
    )
}
DIGEST = "digest"  # the kind of a digest's own row (and of its unsubscribe link)

# Notification kinds (services/notifications.py) → the preference that governs their mail.
PREFERENCE_OF: dict[str, str] = {
    "reply": "reply",
    "followed_thread": "followed_thread",
    "post_hidden": "moderation",
    "post_restored": "moderation",
    "exemplar.nominated": "exemplar",
    "review_assigned": "review_assigned",
    "reviews_received": "reviews_received",
    "deadline": "deadline",
}

MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
LEASE = timedelta(minutes=15)
DIGEST_HOUR = 7  # local time of day after which a person's daily digest goes out
MAX_ERROR_CHARS = 2000


def backoff(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: 30 s, 1 min, 2 min, … capped at 6 hours."""
    wait: timedelta = BACKOFF_BASE * (2 ** min(max(attempts - 1, 0), 20))
    return min(wait, BACKOFF_CAP)


def preference_kind(notice_kind: str) -> str | None:
    return PREFERENCE_OF.get(notice_kind)


# --- preferences ---------------------------------------------------------------------------


async def modes_of(session: AsyncSession, *, user_id: int) -> dict[str, Mode]:
    """A person's mode for every kind (their choice, else the kind's default)."""
    rows = await session.execute(
        select(NotificationPreference.kind, NotificationPreference.mode).where(
            NotificationPreference.user_id == user_id
        )
    )
    chosen = {kind: mode for kind, mode in rows.all()}
    return {
        key: Mode(chosen[key]) if chosen.get(key) in Mode.__members__ else kind.default
        for key, kind in KINDS.items()
    }


def _insert(session: AsyncSession, table: type[object] | sa.Table) -> sa.Insert:
    """INSERT for the session's backend, so callers can add ON CONFLICT clauses."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def set_modes(
    session: AsyncSession, *, user_id: int, modes: dict[str, Mode], now: datetime | None = None
) -> dict[str, Mode]:
    """Store a person's choices (an upsert per kind, so concurrent changes cannot lose one);
    choosing "never" drops the mail of that kind still waiting to go."""
    now = now or utcnow()
    unknown = sorted(set(modes) - set(KINDS))
    if unknown:
        raise Invalid(
            problems=[Problem(f"is not a kind of notice; known: {', '.join(KINDS)}", field=k)
                      for k in unknown]
        )  # fmt: skip
    for kind, mode in modes.items():
        insert = _insert(session, NotificationPreference).values(
            user_id=user_id, kind=kind, mode=mode.value, updated_at=now
        )
        await session.execute(
            insert.on_conflict_do_update(  # type: ignore[attr-defined]
                index_elements=["user_id", "kind"],
                set_={"mode": mode.value, "updated_at": now},
            )
        )
    never = [kind for kind, mode in modes.items() if mode is Mode.never]
    notices = [n for n, pref in PREFERENCE_OF.items() if pref in never]
    if notices:
        await session.execute(
            sa.update(OutboxMessage)
            .where(
                col(OutboxMessage.user_id) == user_id,
                col(OutboxMessage.kind).in_(notices),
                col(OutboxMessage.status).in_([Status.held.value, Status.pending.value]),
            )
            .values(status=Status.skipped.value)
            .execution_options(synchronize_session=False)
        )
    return await modes_of(session, user_id=user_id)


def require_person(actor: Actor) -> int:
    if actor.user_id is None:
        raise NotFound("Sign in to choose how you hear from Peerboard.")
    return actor.user_id


def present_preferences(modes: dict[str, Mode]) -> NotificationPreferencesView:
    return NotificationPreferencesView(
        kinds=[
            MailKindView(kind=key, label=kind.label, mode=modes[key], default=kind.default)
            for key, kind in KINDS.items()
        ]
    )


async def my_preferences(session: AsyncSession, *, actor: Actor) -> NotificationPreferencesView:
    """A signed-in person reads their own choices."""
    return present_preferences(await modes_of(session, user_id=require_person(actor)))


async def change_my_preferences(
    session: AsyncSession, *, actor: Actor, modes: dict[str, Mode]
) -> NotificationPreferencesView:
    """A signed-in person changes their own choices (kinds not named stay as they were)."""
    changed = await set_modes(session, user_id=require_person(actor), modes=modes)
    return present_preferences(changed)


async def mail_key(session: AsyncSession, *, user_id: int) -> str:
    """The person's random mail key (made once), which unsubscribe links carry."""
    await session.execute(
        _insert(session, MailRecipient)
        .values(user_id=user_id, key=secrets.token_urlsafe(18), created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["user_id"])  # type: ignore[attr-defined]
    )
    key = await session.scalar(select(MailRecipient.key).where(MailRecipient.user_id == user_id))
    assert key is not None
    return key


async def unsubscribe(session: AsyncSession, *, key: str, kind: str) -> str | None:
    """Whoever holds a (verified) unsubscribe link stops that kind of mail; a digest's link
    stops every kind that was going to the digest. Returns the label, or None if unknown."""
    user_id = await session.scalar(select(MailRecipient.user_id).where(MailRecipient.key == key))
    if user_id is None or (kind not in KINDS and kind != DIGEST):
        return None
    if kind == DIGEST:
        modes = await modes_of(session, user_id=user_id)
        chosen = {k: Mode.never for k, m in modes.items() if m is Mode.digest}
        await set_modes(session, user_id=user_id, modes=chosen)
        return "the daily digest"
    await set_modes(session, user_id=user_id, modes={kind: Mode.never})
    return KINDS[kind].label.lower()


async def unsubscribe_label(session: AsyncSession, *, key: str, kind: str) -> str | None:
    """What a link would stop (for the confirmation page), without changing anything."""
    known = await session.scalar(select(MailRecipient.user_id).where(MailRecipient.key == key))
    if known is None:
        return None
    if kind == DIGEST:
        return "the daily digest"
    return KINDS[kind].label.lower() if kind in KINDS else None


# --- writing -------------------------------------------------------------------------------


_STATUS_OF = {
    Mode.immediately: Status.pending,
    Mode.digest: Status.held,
    Mode.never: Status.skipped,
}
# People per IN list of the preferences query: well under SQLite's bound-parameter limit.
_CHUNK = 500


async def _statuses(
    session: AsyncSession, *, kinds: dict[int, str]
) -> tuple[dict[int, Status], set[int]]:
    """What becomes of each person's mail (of the kind given for them), as they chose, and
    who already has a mail key: one query whatever their number and kinds."""
    preference_of = {uid: preference_kind(kind) for uid, kind in kinds.items()}
    asked = sorted({p for p in preference_of.values() if p is not None})
    chosen: dict[tuple[int, str], str] = {}
    keyed: set[int] = set()
    user_ids = list(kinds)
    for at in range(0, len(user_ids), _CHUNK):
        some = user_ids[at : at + _CHUNK]
        rows: list[Any] = list(
            (await session.execute(_statuses_query(), {"people": some, "kinds": asked})).all()
        )
        for uid, kind, mode in rows:
            if kind is None:
                keyed.add(uid)
            else:
                chosen[(uid, kind)] = mode
    statuses = {}
    for uid, preference in preference_of.items():
        if preference is None:
            statuses[uid] = Status.pending
            continue
        mode = chosen.get((uid, preference))
        default = KINDS[preference].default
        statuses[uid] = _STATUS_OF[Mode(mode) if mode and mode in Mode.__members__ else default]
    return statuses, keyed


@functools.cache
def _statuses_query() -> Any:
    """Who of `people` has a mail key (rows with kind NULL), and their modes for `kinds`:
    built once, values bound per call."""
    people: Any = sa.bindparam("people", expanding=True)
    keys = select(
        col(MailRecipient.user_id), sa.null().label("kind"), sa.null().label("mode")
    ).where(col(MailRecipient.user_id).in_(people))
    modes = select(
        col(NotificationPreference.user_id),
        col(NotificationPreference.kind),
        col(NotificationPreference.mode),
    ).where(
        col(NotificationPreference.user_id).in_(people),
        col(NotificationPreference.kind).in_(sa.bindparam("kinds", expanding=True)),
    )
    return sa.union_all(keys, modes)


async def _ensure_keys(session: AsyncSession, *, user_ids: list[int], now: datetime) -> None:
    """Every one of these people has a mail key (unsubscribe links carry it)."""
    if not user_ids:
        return
    # One statement with many parameter sets (executemany), not a multi-row VALUES: that
    # form has no cache key, so SQLAlchemy would compile it anew every time (~1 ms).
    await session.execute(
        _insert(session, table_of(MailRecipient)).on_conflict_do_nothing(  # type: ignore[attr-defined]
            index_elements=["user_id"]
        ),
        [{"user_id": uid, "key": secrets.token_urlsafe(18), "created_at": now} for uid in user_ids],
    )


def _row(
    *, user_id: int, kind: str, status: Status, subject: str, body: str, link: str,
    thread_ref: str | None, dedupe_key: str | None, now: datetime,
) -> dict[str, object]:  # fmt: skip
    return {
        "public_id": secrets.token_urlsafe(18),
        "user_id": user_id,
        "kind": kind,
        "status": status.value,
        "dedupe_key": dedupe_key,
        "subject": subject[:300],
        "body": body,
        "link": link[:512],
        "thread_ref": thread_ref,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
        "created_at": now,
    }


async def enqueue(
    session: AsyncSession,
    *,
    user_id: int,
    kind: str,
    subject: str,
    body: str,
    link: str = "",
    thread_ref: str | None = None,
    dedupe_key: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Queue one mail in the caller's transaction, as the person chose (now, in the digest,
    or never: then kept as "skipped"). With a dedupe key, a second call is a no-op: returns
    False when the row already existed."""
    now = now or utcnow()
    statuses, keyed = await _statuses(session, kinds={user_id: kind})
    status = statuses[user_id]
    if status is not Status.skipped and user_id not in keyed:
        await _ensure_keys(session, user_ids=[user_id], now=now)
    insert = _insert(session, OutboxMessage).values(
        **_row(
            user_id=user_id,
            kind=kind,
            status=status,
            subject=subject,
            body=body,
            link=link,
            thread_ref=thread_ref,
            dedupe_key=dedupe_key,
            now=now,
        )
    )
    if dedupe_key is not None:
        insert = insert.on_conflict_do_nothing(  # type: ignore[attr-defined]
            index_elements=["dedupe_key"]
        )
    result = await session.execute(insert.returning(col(OutboxMessage.id)))
    return result.scalar_one_or_none() is not None


@dataclass(frozen=True)
class Mail:
    """One person's mail in a batch (services/notifications.notify_post)."""

    user_id: int
    kind: str
    subject: str
    body: str


async def enqueue_many(
    session: AsyncSession,
    *,
    mails: Sequence[Mail],
    link: str = "",
    thread_ref: str | None = None,
    now: datetime | None = None,
) -> None:
    """Mails about one thing queued for many people at once (a reply's parent author and
    the thread's followers), each as they chose: a fixed number of statements whatever
    their number. One mail per person."""
    if not mails:
        return
    now = now or utcnow()
    statuses, keyed = await _statuses(session, kinds={m.user_id: m.kind for m in mails})
    await _ensure_keys(
        session,
        user_ids=[
            m.user_id
            for m in mails
            if statuses[m.user_id] is not Status.skipped and m.user_id not in keyed
        ],
        now=now,
    )
    await session.execute(
        sa.insert(table_of(OutboxMessage)),  # executemany: compiled once, cached
        [
            _row(
                user_id=m.user_id,
                kind=m.kind,
                status=statuses[m.user_id],
                subject=m.subject,
                body=m.body,
                link=link,
                thread_ref=thread_ref,
                dedupe_key=None,
                now=now,
            )
            for m in mails
        ],
    )


async def settle(
    session: AsyncSession,
    model: Any,
    *,
    row_id: int,
    attempts: int,
    ok: bool,
    permanent: bool,
    done: tuple[str, str],
    status_code: int | None,
    error: str,
    now: datetime,
) -> str:
    """Record one delivery attempt of a leased queue row (webhooks, LMS scores): `done`
    (its status and the column of its time) when it worked; "failed" when it cannot work
    or has used its attempts; else "pending" again, after a backoff. Only the lease holder
    of that attempt settles it (status "sending" and the same attempt count). Returns the
    new status."""
    done_status, done_at = done
    if ok:
        status = done_status
    elif permanent or attempts >= MAX_ATTEMPTS:
        status = "failed"
    else:
        status = "pending"
    await session.execute(
        sa.update(model)
        .where(model.id == row_id, model.status == "sending", model.attempts == attempts)
        .values(
            status=status,
            response_status=status_code,
            last_error=error[:MAX_ERROR_CHARS],
            lease_until=None,
            next_attempt_at=now + backoff(attempts),
            **{done_at: now if ok else None},
        )
        .execution_options(synchronize_session=False)
    )
    return status


# --- digests -------------------------------------------------------------------------------


async def digest_zone(session: AsyncSession, *, user_id: int) -> tzinfo:
    """The time zone of a person's daily digest: that of the cohort they joined first (their
    membership with the lowest id), so a person in several cohorts gets one digest a day on
    one deterministic clock; UTC for someone in no cohort. (Outbox rows carry no cohort, so
    the zone is the person's, not an item's.)"""
    name = await session.scalar(
        select(Cohort.time_zone)
        .join(Membership, col(Membership.cohort_id) == col(Cohort.id))
        .where(Membership.user_id == user_id)
        .order_by(col(Membership.id))
        .limit(1)
    )
    return times.zone(name)


async def collect_digests(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Bundle each person's held mail into one digest a day, after DIGEST_HOUR in their zone
    (digest_zone: the zone of their first cohort, so 07:00 local on both sides of a
    daylight-saving change). The digest's dedupe key is the person and their local date, so
    several processes make one digest; held mail that arrives after today's digest waits for
    tomorrow's."""
    now = now or utcnow()
    people = await session.execute(
        select(col(OutboxMessage.user_id))
        .where(OutboxMessage.status == Status.held.value)
        .distinct()
    )
    made = 0
    for user_id in list(people.scalars()):
        local = now.astimezone(await digest_zone(session, user_id=user_id))
        if local.hour < DIGEST_HOUR:
            continue
        key = f"digest:{user_id}:{local.date().isoformat()}"
        await mail_key(session, user_id=user_id)
        inserted = await session.execute(
            _insert(session, OutboxMessage)
            .values(
                public_id=secrets.token_urlsafe(18),
                user_id=user_id,
                kind=DIGEST,
                status=Status.pending.value,
                dedupe_key=key,
                subject=f"Your Peerboard digest for {local:%A} {local.day} {local:%B}",
                body="",
                link="/notifications",
                attempts=0,
                next_attempt_at=now,
                last_error="",
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])  # type: ignore[attr-defined]
            .returning(col(OutboxMessage.id))
        )
        digest_id = inserted.scalar_one_or_none()
        if digest_id is None:
            continue
        carried = await session.execute(
            sa.update(OutboxMessage)
            .where(
                col(OutboxMessage.user_id) == user_id,
                col(OutboxMessage.status) == Status.held.value,
                col(OutboxMessage.created_at) <= now,
            )
            .values(status=Status.digested.value, digest_id=digest_id)
            .execution_options(synchronize_session=False)
        )
        if carried.rowcount == 0:  # type: ignore[attr-defined]
            # Another process carried them first (its digest has another local date).
            await session.execute(
                sa.delete(OutboxMessage).where(col(OutboxMessage.id) == digest_id)
            )
            continue
        made += 1
    return made


# --- the development mail page -------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One outbox message as the development page shows it."""

    to: str
    kind: str
    status: str
    subject: str
    items: list[Item]
    created_at: datetime
    last_error: str


async def recent(session: AsyncSession, *, limit: int = 100) -> list[Sent]:
    """The latest messages of the outbox, with their addresses: for the development-only
    page that shows what would have been sent (never served in production)."""
    rows = await session.execute(
        select(OutboxMessage, User.display_name, User.email)
        .join(User, col(User.id) == col(OutboxMessage.user_id))
        .where(col(OutboxMessage.status) != Status.digested.value)
        .order_by(col(OutboxMessage.id).desc())
        .limit(limit)
    )
    found = rows.all()
    carried = await _carried(session, [m for m, _, _ in found])
    return [
        Sent(
            to=f"{name} <{email or 'no address'}>",
            kind=m.kind,
            status=m.status,
            subject=m.subject,
            items=carried.get(m.id or 0, []) if m.kind == DIGEST else [Item(m.body, m.link)],
            created_at=m.created_at,
            last_error=m.last_error,
        )
        for m, name, email in found
    ]


# --- sending -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One notice in a mail: presented text and a path under the base URL."""

    text: str
    link: str


@dataclass(frozen=True)
class Claimed:
    """A message leased to one sender, with what composing it needs (no names)."""

    id: int
    public_id: str
    kind: str
    to: str | None
    mail_key: str | None
    subject: str
    items: list[Item]
    thread_ref: str | None
    attempts: int


async def _carried(session: AsyncSession, messages: list[OutboxMessage]) -> dict[int, list[Item]]:
    """The items each digest among `messages` carries, by the digest's id."""
    digest_ids = [m.id for m in messages if m.kind == DIGEST and m.id is not None]
    carried: dict[int, list[Item]] = {}
    if digest_ids:
        items = await session.execute(
            select(OutboxMessage.digest_id, OutboxMessage.body, OutboxMessage.link)
            .where(col(OutboxMessage.digest_id).in_(digest_ids))
            .order_by(col(OutboxMessage.id))
        )
        for digest_id, body, link in items.all():
            carried.setdefault(digest_id or 0, []).append(Item(body, link))
    return carried


async def claim(
    session: AsyncSession, *, now: datetime | None = None, limit: int = 20
) -> list[Claimed]:
    """Lease up to `limit` due messages to this sender (one sender per message)."""
    now = now or utcnow()
    ids = await lease_due(session, OutboxMessage, now=now, limit=limit, lease=LEASE)
    if not ids:
        return []
    rows = await session.execute(
        select(OutboxMessage, User.email, MailRecipient.key)
        .join(User, col(User.id) == col(OutboxMessage.user_id))
        .outerjoin(MailRecipient, col(MailRecipient.user_id) == col(OutboxMessage.user_id))
        .where(col(OutboxMessage.id).in_(ids))
        .order_by(col(OutboxMessage.id))
        .execution_options(populate_existing=True)
    )
    messages = rows.all()
    carried = await _carried(session, [m for m, _, _ in messages])
    return [
        Claimed(
            id=m.id or 0,
            public_id=m.public_id,
            kind=m.kind,
            to=email,
            mail_key=key,
            subject=m.subject,
            items=carried.get(m.id or 0, []) if m.kind == DIGEST else [Item(m.body, m.link)],
            thread_ref=m.thread_ref,
            attempts=m.attempts,
        )
        for m, email, key in messages
    ]


async def mark_sent(
    session: AsyncSession, *, message_id: int, attempts: int, now: datetime | None = None
) -> None:
    """Record a delivery (only while this sender still holds the lease)."""
    await session.execute(
        sa.update(OutboxMessage)
        .where(
            col(OutboxMessage.id) == message_id,
            col(OutboxMessage.status) == Status.sending.value,
            col(OutboxMessage.attempts) == attempts,
        )
        .values(status=Status.sent.value, sent_at=now or utcnow(), lease_until=None)
        .execution_options(synchronize_session=False)
    )


async def mark_failed(
    session: AsyncSession,
    *,
    message_id: int,
    attempts: int,
    error: str,
    permanent: Status | None = None,
    now: datetime | None = None,
) -> Status:
    """Record a failed attempt: retried after a growing wait, or given up for good (a
    permanent refusal, or MAX_ATTEMPTS reached). Returns the new status."""
    now = now or utcnow()
    if permanent is None and attempts >= MAX_ATTEMPTS:
        permanent = Status.failed
    status = permanent or Status.pending
    await session.execute(
        sa.update(OutboxMessage)
        .where(
            col(OutboxMessage.id) == message_id,
            col(OutboxMessage.status) == Status.sending.value,
            col(OutboxMessage.attempts) == attempts,
        )
        .values(
            status=status.value,
            last_error=error[:MAX_ERROR_CHARS],
            next_attempt_at=now + backoff(attempts),
            lease_until=None,
        )
        .execution_options(synchronize_session=False)
    )
    return status
