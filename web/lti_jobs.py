"""The LTI Advantage job of each app process: read due course rosters from their LMS, and
send due scores to their gradebooks (services/lti_roster.py, services/lti_grades.py).

Started in the app's lifespan like the mail and webhook senders; several processes share
the work through leases (one sync per course, one delivery per score)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request

from services import lti_roster
from services.lti_advantage import AdvantageClient
from services.lti_grades import ScoreSender
from web.settings import Settings

log = logging.getLogger("peerboard.lti")


def advantage_of(request: Request) -> AdvantageClient:
    client: AdvantageClient = request.app.state.lti_services
    return client


async def run_once(
    sessions: async_sessionmaker[AsyncSession], client: AdvantageClient, settings: Settings
) -> None:
    outcomes = await lti_roster.sync_due(
        sessions, client, secret=settings.secret_key,
        every=timedelta(hours=settings.lti_roster_sync_hours),
    )  # fmt: skip
    for outcome in outcomes:
        if not outcome.ok and not outcome.busy:
            log.warning("LTI roster sync failed: %s", outcome.message)
    sender = ScoreSender(client, secret=settings.secret_key)
    while sum((await sender.deliver_due(sessions)).values()) >= sender.batch:
        pass


def wake(request: Request) -> None:
    """Run the job's next round now (a launch asked for a roster sync): the launch itself
    never waits for the LMS."""
    event: asyncio.Event = request.app.state.lti_wake
    event.set()


async def run_forever(
    sessions: async_sessionmaker[AsyncSession],
    client: AdvantageClient,
    settings: Settings,
    woken: asyncio.Event,
) -> None:
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), timeout=settings.lti_tick_seconds)
        woken.clear()
        try:
            await run_once(sessions, client, settings)
        except Exception:  # a failed round is retried next time; the app keeps serving
            log.exception("LTI services round failed")
