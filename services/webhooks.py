"""Webhooks for the course's other tools: instructors register an HTTPS endpoint per cohort
with the events it wants; each event is written as a delivery in the transaction of the
change, then POSTed, signed per the Standard Webhooks specification:

    webhook-id: msg_…            (the same on every retry: receivers dedupe on it)
    webhook-timestamp: 1700000000 (this attempt, Unix seconds)
    webhook-signature: v1,base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))

with key = base64-decoded secret after its "whsec_" prefix. Failed deliveries are retried
with the mail outbox's backoff; every delivery keeps its last answer (the delivery log).

Payloads are what any student of the cohort may see, and less: ids, titles and links,
never an author, never a body; nothing from a "post first" question (a student who has not
posted there may not see its threads). Endpoints whose host resolves to a loopback,
private, link-local or otherwise non-public address are refused at delivery (SSRF) unless
the operator allows them (PEERBOARD_WEBHOOKS_ALLOW_PRIVATE, for tests and closed networks).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services import outbox, policy
from services.db import lease_due, transaction
from services.errors import Invalid, NotFound, Problem
from services.models import (
    Assignment,
    Cohort,
    Post,
    ReviewTask,
    TaskStatus,
    Thread,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from services.policy import Actor, DiscussionScope

EVENTS = (
    "thread.created",
    "post.created",
    "phase.changed",
    "exemplar.published",
    "review_round.complete",
)
TEST_EVENT = "webhook.test"
MAX_ENDPOINTS = 20
TIMEOUT_SECONDS = 10.0
MAX_ATTEMPTS = outbox.MAX_ATTEMPTS


class EndpointView(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: datetime


class EndpointCreatedView(EndpointView):
    secret: str  # shown once, at registration


class DeliveryView(BaseModel):
    id: str
    event: str
    status: str
    attempts: int
    response_status: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None


class WebhookRefused(Exception):
    """The endpoint may not be called (its address is not public)."""


# --- signatures ----------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# --- addresses (SSRF) ----------------------------------------------------------------------


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> str:
    """An absolute https URL without credentials (http only where private addresses are
    allowed); a literal non-public address is refused here already."""
    url = url.strip()
    parts = urlsplit(url)
    problems = []
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        problems.append(Problem("must be an https:// URL", field="url"))
    elif not parts.hostname or parts.username or parts.password or parts.fragment:
        problems.append(Problem("must name a host, without credentials or #fragment", field="url"))
    elif len(url) > 2048:
        problems.append(Problem("is too long (2048 characters at most)", field="url"))
    else:
        try:
            literal = _public(parts.hostname)
        except ValueError:
            literal = True  # a name: checked when it is resolved, at each delivery
        if not literal and not allow_private:
            problems.append(Problem("points to a private or loopback address", field="url"))
    if problems:
        raise Invalid(problems=problems)
    return url


async def resolve_public(url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host resolves to any non-public address (checked per delivery, so
    a name that later points inside the network is refused then)."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookRefused(f"cannot resolve {host}: {exc}") from None
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(_public(a) for a in addresses):
        raise WebhookRefused(f"{host} resolves to a private or loopback address")


# --- management (instructors) --------------------------------------------------------------


async def _managed_cohort(session: AsyncSession, *, actor: Actor, slug: str) -> Cohort:
    cohort = await policy.access_cohort(session, actor=actor, slug=slug)
    if not policy.can_manage_webhooks(actor, cohort):
        raise NotFound("No such cohort.")
    return cohort


async def _managed_endpoint(
    session: AsyncSession, *, actor: Actor, endpoint_id: str
) -> WebhookEndpoint:
    endpoint = await session.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.public_id == endpoint_id)
    )
    cohort = await session.get(Cohort, endpoint.cohort_id) if endpoint is not None else None
    if endpoint is None or cohort is None or not policy.can_manage_webhooks(actor, cohort):
        raise NotFound("No such webhook.")
    return endpoint


def present_endpoint(endpoint: WebhookEndpoint) -> EndpointView:
    return EndpointView(
        id=endpoint.public_id,
        url=endpoint.url,
        events=list(endpoint.events),
        created_at=endpoint.created_at,
    )


async def register(
    session: AsyncSession,
    *,
    actor: Actor,
    cohort_slug: str,
    url: str,
    events: list[str],
    allow_private: bool,
) -> EndpointCreatedView:
    """Instructors register an endpoint for their cohort's events; the secret is shown once."""
    cohort = await _managed_cohort(session, actor=actor, slug=cohort_slug)
    url = check_url(url, allow_private=allow_private)
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise Invalid(problems=[Problem(f"must be some of {', '.join(EVENTS)}", field="events")])
    count = await session.scalar(
        select(sa.func.count()).where(WebhookEndpoint.cohort_id == cohort.id)
    )
    if (count or 0) >= MAX_ENDPOINTS:
        raise Invalid(problems=[Problem(f"at most {MAX_ENDPOINTS} per cohort", field="url")])
    endpoint = WebhookEndpoint(
        public_id=secrets.token_urlsafe(12),
        cohort_id=cohort.id or 0,
        url=url,
        secret=new_secret(),
        events=[e for e in EVENTS if e in events],
        created_by_id=actor.user_id,
    )
    session.add(endpoint)
    await session.flush()
    return EndpointCreatedView(**present_endpoint(endpoint).model_dump(), secret=endpoint.secret)


async def list_endpoints(
    session: AsyncSession, *, actor: Actor, cohort_slug: str
) -> list[EndpointView]:
    """Instructors list their cohort's endpoints (never the secrets)."""
    cohort = await _managed_cohort(session, actor=actor, slug=cohort_slug)
    rows = await session.execute(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.cohort_id == cohort.id)
        .order_by(col(WebhookEndpoint.id))
    )
    return [present_endpoint(e) for e in rows.scalars()]


async def remove(session: AsyncSession, *, actor: Actor, endpoint_id: str) -> None:
    """Instructors remove an endpoint (its pending deliveries go with it)."""
    endpoint = await _managed_endpoint(session, actor=actor, endpoint_id=endpoint_id)
    await session.delete(endpoint)


async def send_test(session: AsyncSession, *, actor: Actor, endpoint_id: str) -> DeliveryView:
    """Instructors queue a `webhook.test` event to one endpoint."""
    endpoint = await _managed_endpoint(session, actor=actor, endpoint_id=endpoint_id)
    delivery = _delivery(endpoint, TEST_EVENT, {"message": "A test event from Peerboard."})
    session.add(delivery)
    await session.flush()
    return present_delivery(delivery)


def present_delivery(d: WebhookDelivery) -> DeliveryView:
    return DeliveryView(
        id=d.message_id,
        event=d.event_type,
        status=d.status,
        attempts=d.attempts,
        response_status=d.response_status,
        last_error=d.last_error,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
    )


@dataclass(frozen=True)
class EndpointLog:
    endpoint: EndpointView
    deliveries: list[DeliveryView]


async def overview(
    session: AsyncSession, *, actor: Actor, cohort_slug: str, per_endpoint: int = 10
) -> tuple[Cohort, list[EndpointLog]]:
    """The cohort's endpoints with their latest deliveries (the instructors' page)."""
    cohort = await _managed_cohort(session, actor=actor, slug=cohort_slug)
    logs = []
    for endpoint in await list_endpoints(session, actor=actor, cohort_slug=cohort_slug):
        latest = await deliveries(session, actor=actor, endpoint_id=endpoint.id, limit=per_endpoint)
        logs.append(EndpointLog(endpoint, latest))
    return cohort, logs


async def deliveries(
    session: AsyncSession, *, actor: Actor, endpoint_id: str, limit: int = 50
) -> list[DeliveryView]:
    """An endpoint's delivery log, newest first."""
    endpoint = await _managed_endpoint(session, actor=actor, endpoint_id=endpoint_id)
    rows = await session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(col(WebhookDelivery.id).desc())
        .limit(limit)
    )
    return [present_delivery(d) for d in rows.scalars()]


# --- events --------------------------------------------------------------------------------


def _delivery(endpoint: WebhookEndpoint, event: str, data: dict[str, Any]) -> WebhookDelivery:
    now = utcnow()
    body = orjson.dumps(
        {"type": event, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data}
    ).decode()
    return WebhookDelivery(
        message_id="msg_" + secrets.token_urlsafe(18),
        endpoint_id=endpoint.id or 0,
        event_type=event,
        payload=body,
        status="pending",
        next_attempt_at=now,
        created_at=now,
    )


async def announce(
    session: AsyncSession, *, cohort_id: int, event: str, data: dict[str, Any]
) -> int:
    """Queue an event for every endpoint of the cohort that wants it, in the caller's
    transaction. `data` must already be what any student of the cohort may see."""
    wanted = await _wanting(session, cohort_id=cohort_id, event=event)
    for endpoint in wanted:
        session.add(_delivery(endpoint, event, data))
    return len(wanted)


async def _wanting(session: AsyncSession, *, cohort_id: int, event: str) -> list[WebhookEndpoint]:
    rows = await session.execute(_endpoints_query(), {"cohort_id": cohort_id})
    return [e for e in rows.scalars() if event in e.events]


@functools.cache
def _endpoints_query() -> Any:
    """A cohort's endpoints (bind parameter `cohort_id`): built once, every reply asks."""
    return select(WebhookEndpoint).where(WebhookEndpoint.cohort_id == sa.bindparam("cohort_id"))


def _assignment(assignment: Assignment) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "title": assignment.title,
        "phase": assignment.phase.value,
        "path": f"/assignments/{assignment.id}",
    }


async def post_created(
    session: AsyncSession, *, thread: Thread, post: Post, scope: DiscussionScope
) -> None:
    """A thread was opened or a reply posted: its id, title and link; no author, no body."""
    if scope.post_first:
        return  # who may see the thread depends on the reader: no channel-wide event
    event = "thread.created" if post.parent_id is None else "post.created"
    # Most cohorts have no endpoint: then a reply costs this one query and nothing more.
    wanted = await _wanting(session, cohort_id=scope.cohort_id, event=event)
    if not wanted:
        return
    assignment = await session.get(Assignment, scope.assignment_id)
    assert assignment is not None
    data: dict[str, Any] = {
        "assignment": _assignment(assignment),
        "thread": {
            "id": thread.public_id,
            "title": thread.title,
            "path": f"/threads/{thread.public_id}",
        },
    }
    if post.parent_id is not None:
        data["post"] = {
            "id": post.public_id,
            "path": f"/threads/{thread.public_id}#post-{post.public_id}",
        }
    for endpoint in wanted:
        session.add(_delivery(endpoint, event, data))


async def phase_changed(session: AsyncSession, *, assignment: Assignment) -> None:
    await announce(
        session,
        cohort_id=assignment.cohort_id,
        event="phase.changed",
        data={"assignment": _assignment(assignment)},
    )


async def exemplar_published(
    session: AsyncSession, *, assignment: Assignment, exemplar_id: str, title: str
) -> None:
    """An exemplar appeared in the gallery: its title and the gallery's link, no author."""
    await announce(
        session,
        cohort_id=assignment.cohort_id,
        event="exemplar.published",
        data={
            "assignment": _assignment(assignment),
            "exemplar": {
                "id": exemplar_id,
                "title": title,
                "path": f"/assignments/{assignment.id}/exemplars",
            },
        },
    )


async def review_submitted(session: AsyncSession, *, assignment: Assignment) -> None:
    """After a review is submitted: once every active review task is submitted, the round is
    complete (announced once per assignment and round)."""
    left = await session.scalar(
        select(sa.func.count()).where(
            ReviewTask.assignment_id == assignment.id,
            col(ReviewTask.status).in_([TaskStatus.assigned, TaskStatus.started]),
        )
    )
    if left:
        return
    submitted = await session.scalar(
        select(sa.func.count()).where(
            ReviewTask.assignment_id == assignment.id,
            ReviewTask.status == TaskStatus.submitted,
        )
    )
    await announce(
        session,
        cohort_id=assignment.cohort_id,
        event="review_round.complete",
        data={"assignment": _assignment(assignment), "reviews": submitted or 0},
    )


# --- delivering ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claimed:
    id: int
    message_id: str
    url: str
    secret: str
    payload: str
    attempts: int


async def _claim(session: AsyncSession, *, now: datetime, limit: int) -> list[_Claimed]:
    ids = await lease_due(session, WebhookDelivery, now=now, limit=limit, lease=outbox.LEASE)
    if not ids:
        return []
    rows = await session.execute(
        select(WebhookDelivery, WebhookEndpoint.url, WebhookEndpoint.secret)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(col(WebhookDelivery.id).in_(ids))
        .order_by(col(WebhookDelivery.id))
        .execution_options(populate_existing=True)
    )
    return [
        _Claimed(d.id or 0, d.message_id, url, secret, d.payload, d.attempts)
        for d, url, secret in rows.all()
    ]


async def _record(
    session: AsyncSession, claimed: _Claimed, *, ok: bool, status_code: int | None, error: str,
    now: datetime, permanent: bool = False,
) -> str:  # fmt: skip
    return await outbox.settle(
        session, WebhookDelivery, row_id=claimed.id, attempts=claimed.attempts, ok=ok,
        permanent=permanent, done=("delivered", "delivered_at"),
        status_code=status_code, error=error, now=now,
    )  # fmt: skip


@dataclass
class WebhookSender:
    allow_private: bool = False
    timeout: float = TIMEOUT_SECONDS
    batch: int = 20

    async def deliver_due(
        self, sessions: async_sessionmaker[AsyncSession], *, now: datetime | None = None
    ) -> dict[str, int]:
        """Claim due deliveries and POST each once; record every outcome."""
        now = now or utcnow()
        async with transaction(sessions) as session:
            claimed = await _claim(session, now=now, limit=self.batch)
        counts = {"delivered": 0, "pending": 0, "failed": 0}
        if not claimed:
            return counts
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            for item in claimed:
                ok, code, error, permanent = await self._post(client, item)
                async with transaction(sessions) as session:
                    status = await _record(
                        session, item, ok=ok, status_code=code, error=error, now=now,
                        permanent=permanent,
                    )  # fmt: skip
                counts[status] += 1
        return counts

    async def _post(
        self, client: httpx.AsyncClient, item: _Claimed
    ) -> tuple[bool, int | None, str, bool]:
        try:
            await resolve_public(item.url, allow_private=self.allow_private)
        except WebhookRefused as exc:
            return False, None, str(exc), True
        timestamp = int(utcnow().timestamp())
        body = item.payload.encode()
        headers = {
            "content-type": "application/json",
            "user-agent": "Peerboard-Webhooks/1",
            "webhook-id": item.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(
                item.secret, message_id=item.message_id, timestamp=timestamp, body=body
            ),
        }
        try:
            response = await client.post(item.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return False, None, f"{type(exc).__name__}: {exc}", False
        if 200 <= response.status_code < 300:
            return True, response.status_code, "", False
        return False, response.status_code, f"HTTP {response.status_code}", False
