"""Rate limits (issue 15, item 9) with the `limits` library: moving windows per person and
per client address, kept in memory (one process) or in Redis when REDIS_URL is set (so the
limits hold across processes). Over a limit: 429 `rate_limited` with Retry-After.

Defaults never bother a real class but stop scripts. A limits store that fails (Redis down)
lets the request through and logs it: a broker outage must not lock people out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import ConnectionPool
from starlette.requests import Request

from web.errors import ApiError

log = logging.getLogger("peerboard.ratelimit")


@dataclass(frozen=True)
class Rule:
    name: str
    per_person: RateLimitItem
    per_address: RateLimitItem
    what: str


# Join codes are short secrets: guessing them is the attack. A student joins once.
JOIN = Rule("join", parse("10 per 10 minutes"), parse("30 per 10 minutes"), "join-code attempts")


class RateLimits:
    def __init__(self, redis_url: str | None) -> None:
        # Our own pool, so that the app's shutdown closes its connections (`close`).
        self.pool: ConnectionPool | None = None
        storage: Storage = MemoryStorage()
        if redis_url:
            self.pool = ConnectionPool.from_url(redis_url)
            storage = RedisStorage(
                redis_url,
                implementation="redispy",
                key_prefix="peerboard-limits",
                # Documented (passed on to redis.asyncio.Redis), typed narrower by limits.
                connection_pool=self.pool,  # type: ignore[arg-type]
            )
        self.limiter = MovingWindowRateLimiter(storage)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.disconnect()

    async def hit(self, request: Request, rule: Rule, *, person: int | None) -> None:
        """Count one attempt; ApiError 429 when the person or the address is over."""
        address = request.client.host if request.client else "unknown"
        checks = [(rule.per_address, "address", address)]
        if person is not None:
            checks.insert(0, (rule.per_person, "person", str(person)))
        for item, kind, key in checks:
            try:
                allowed = await self.limiter.hit(item, rule.name, kind, key)
                if allowed:
                    continue
                stats = await self.limiter.get_window_stats(item, rule.name, kind, key)
            except Exception:  # the store is down: let the request through
                log.warning("rate limit store failed for %s", rule.name, exc_info=True)
                return
            retry_after = max(1, int(stats.reset_time - time.time()) + 1)
            log.warning("rate limited: %s by %s %s", rule.name, kind, key)
            raise ApiError(
                429,
                f"Too many {rule.what}. Please wait {retry_after} seconds and try again.",
                headers={"Retry-After": str(retry_after)},
            )


def rate_limits_of(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits
