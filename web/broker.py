"""Wake-up signals for live updates: in-process by default, Redis pub/sub with REDIS_URL.

The broker carries no data, only "channel X has news"; subscribers then read the events
table. So a broker outage costs latency, never data: subscribers also poll the database
every POLL_SECONDS, and publishing never fails a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

log = logging.getLogger("peerboard.broker")
PREFIX = "peerboard:"
POLL_SECONDS = 5.0


class Subscription:
    """A coalescing wake-up: any number of publishes before `wait` returns count as one."""

    def __init__(self, registry: dict[str, set[Subscription]], channel: str) -> None:
        self._registry = registry
        self.channel = channel
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """True if woken, False if `seconds` passed first (callers then poll anyway)."""
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            return False
        self._event.clear()
        return True

    def __enter__(self) -> Subscription:
        self._registry[self.channel].add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        subscribers = self._registry.get(self.channel)
        if subscribers is not None:
            subscribers.discard(self)
            if not subscribers:
                self._registry.pop(self.channel, None)


class LocalBroker:
    """One process: publish wakes this process's subscribers directly."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def subscribe(self, channel: str) -> Subscription:
        return Subscription(self._subscribers, channel)

    def _wake(self, channel: str) -> None:
        for subscription in list(self._subscribers.get(channel, ())):
            subscription.notify()

    async def publish(self, channel: str) -> None:
        self._wake(channel)

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())


class RedisBroker(LocalBroker):
    """Several processes: publish goes through Redis; one listener task per process wakes
    the local subscribers. Redis errors are logged, never raised into a request."""

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis.asyncio as redis

        self._redis = redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._listener: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="redis-broker")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()

    async def publish(self, channel: str) -> None:
        self._wake(channel)  # local subscribers need not wait for the round trip
        try:
            await self._redis.publish(PREFIX + channel, b"")
        except Exception as exc:  # Redis down: subscribers elsewhere will poll
            log.warning("redis publish failed (%s); subscribers fall back to polling", exc)

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.psubscribe(PREFIX + "*")
                    self.connected.set()
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") != "pmessage":
                            continue
                        channel = message["channel"]
                        if isinstance(channel, bytes):
                            channel = channel.decode()
                        # A publisher in this process already woke its subscribers; a
                        # second wake-up only costs one extra, empty, database read.
                        self._wake(channel.removeprefix(PREFIX))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                log.warning("redis listener lost (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


def make_broker(redis_url: str | None) -> LocalBroker:
    return RedisBroker(redis_url) if redis_url else LocalBroker()


@asynccontextmanager
async def running(broker: LocalBroker) -> AsyncIterator[LocalBroker]:
    await broker.start()
    try:
        yield broker
    finally:
        await broker.close()
