"""Rate limits (issue 15, item 9) with the `limits` library: moving windows per person and
per client address, kept in memory (one process) or in Redis when REDIS_URL is set (so the
limits hold across processes). Over a limit: 429 `rate_limited` with Retry-After.

Every rule is in RULES below, with why its numbers are what they are. The per-person limit
is the real guard; the per-address limit catches one machine cycling accounts, and is loose
because a whole class may sit behind one school NAT. PEERBOARD_RATE_LIMITS may replace any
rule's numbers (operators, and tests that want small limits).

Who met a 429 is kept for a short while (LIMITED_TTL; in memory or in Redis, no table) so
that a cohort's staff can see who is being limited (`limited_people`).

A limits store that fails (Redis down) lets the request through and logs it: a broker outage
must not lock people out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, Field
from redis.asyncio import ConnectionPool, Redis
from starlette.requests import Request

from web.errors import ApiError

log = logging.getLogger("peerboard.ratelimit")


@dataclass(frozen=True)
class Rule:
    name: str
    per_person: str | None  # None: counted before anyone is known (sign-in)
    per_address: str
    what: str
    why: str


# name: per person, per address — and why.
RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule("join", "10 per 10 minutes", "30 per 10 minutes", "join-code attempts",
             "Join codes are short secrets and guessing them is the attack; a student joins "
             "once, so ten typos in ten minutes is already generous."),
        Rule("sign-in", None, "600 per 10 minutes", "sign-in attempts",
             "Counted at /auth/{p}/login and at the callback (two per sign-in), by address "
             "only: a class of 150 behind one NAT signing in at the start of a lab is 300; a "
             "script replaying callbacks does thousands."),
        Rule("post", "12 per minute", "300 per minute", "posts",
             "A student writes a few posts a minute at most (typing takes time); 12 is four "
             "times that. A lab of 60 behind one address at 5 a minute is 300."),
        Rule("flag", "20 per 10 minutes", "200 per 10 minutes", "flags",
             "Flags hide posts once enough readers agree: a flood is an attack on others' "
             "posts. A reader flags rarely; 20 in ten minutes covers a spam wave."),
        Rule("search", "60 per minute", "600 per minute", "searches",
             "A search is a full-text query: one a second per person is far faster than "
             "anyone reads results; a scraper goes much faster."),
        Rule("token", "10 per hour", "30 per hour", "personal token creations",
             "A person makes a token for a script now and then; minting many is a sign of "
             "a leaked session."),
        Rule("export", "20 per 10 minutes", "60 per 10 minutes", "exports",
             "Each export streams a whole assignment: staff download a few files at a time; "
             "a loop would load the database."),
        Rule("lti-launch", None, "600 per 10 minutes", "LTI launches",
             "Login initiation and launch, by address (no person known yet): a class of 150 "
             "launching from one NAT is 300."),
    )
}  # fmt: skip
JOIN, SIGN_IN, POST, FLAG = RULES["join"], RULES["sign-in"], RULES["post"], RULES["flag"]
SEARCH, TOKEN, EXPORT, LTI_LAUNCH = (
    RULES["search"], RULES["token"], RULES["export"], RULES["lti-launch"],
)  # fmt: skip

# How long a 429 stays visible to staff.
LIMITED_TTL = 3600


def check_overrides(overrides: dict[str, list[str]]) -> dict[str, list[str]]:
    """PEERBOARD_RATE_LIMITS: {"post": ["3 per minute", "10 per minute"], ...}."""
    for name, pair in overrides.items():
        if name not in RULES:
            raise ValueError(f"unknown rate limit {name!r}; known: {', '.join(RULES)}")
        if len(pair) != 2:
            raise ValueError(f"rate limit {name!r}: give [per person, per address]")
        for text in pair:
            parse(text)  # ValueError when it does not read as a limit
    return overrides


@dataclass(frozen=True)
class Limited:
    person: int
    rule: str
    count: int
    last_at: float


class RateLimits:
    def __init__(
        self, redis_url: str | None, overrides: dict[str, list[str]] | None = None
    ) -> None:
        # Our own pool, so that the app's shutdown closes its connections (`close`).
        self.pool: ConnectionPool | None = None
        self.redis: Redis | None = None
        storage: Storage = MemoryStorage()
        if redis_url:
            self.pool = ConnectionPool.from_url(redis_url)
            self.redis = Redis(connection_pool=self.pool)
            storage = RedisStorage(
                redis_url,
                implementation="redispy",
                key_prefix="peerboard-limits",
                # Documented (passed on to redis.asyncio.Redis), typed narrower by limits.
                connection_pool=self.pool,  # type: ignore[arg-type]
            )
        self.limiter = MovingWindowRateLimiter(storage)
        self.items: dict[str, tuple[RateLimitItem | None, RateLimitItem]] = {}
        for name, rule in RULES.items():
            person, address = (overrides or {}).get(name, [rule.per_person, rule.per_address])
            self.items[name] = (parse(person) if person else None, parse(str(address)))
        # In memory: person → rule → (count, last time); pruned on read.
        self.limited: dict[int, dict[str, tuple[int, float]]] = {}

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose(close_connection_pool=False)
        if self.pool is not None:
            await self.pool.disconnect()

    async def hit(self, request: Request, rule: Rule, *, person: int | None) -> None:
        """Count one attempt; ApiError 429 when the person or the address is over."""
        address = request.client.host if request.client else "unknown"
        per_person, per_address = self.items[rule.name]
        checks = [(per_address, "address", address)]
        if person is not None and per_person is not None:
            checks.insert(0, (per_person, "person", str(person)))
        for item, kind, key in checks:
            try:
                allowed = await self.limiter.hit(item, rule.name, kind, key)
                if allowed:
                    continue
                stats = await self.limiter.get_window_stats(item, rule.name, kind, key)
                if person is not None:
                    await self._remember(person, rule.name)
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

    async def _remember(self, person: int, rule: str) -> None:
        now = time.time()
        if self.redis is not None:
            key = f"peerboard-limits:limited:{person}"
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(key, rule, 1)
                pipe.hset(key, f"{rule}:last", str(now))
                pipe.expire(key, LIMITED_TTL)
                await pipe.execute()
            return
        count, _ = self.limited.setdefault(person, {}).get(rule, (0, now))
        self.limited[person][rule] = (count + 1, now)

    async def limited_people(self, people: list[int]) -> list[Limited]:
        """The 429s of the last LIMITED_TTL seconds met by these people, newest first."""
        found: list[Limited] = []
        since = time.time() - LIMITED_TTL
        if self.redis is not None:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for person in people:
                        pipe.hgetall(f"peerboard-limits:limited:{person}")
                    answers = await pipe.execute()
            except Exception:
                log.warning("rate limit store failed reading who is limited", exc_info=True)
                return []
            for person, fields in zip(people, answers, strict=True):
                values = {k.decode(): v.decode() for k, v in fields.items()}
                for name, count in values.items():
                    if not name.endswith(":last"):
                        last = float(values.get(f"{name}:last", "0"))
                        found.append(Limited(person, name, int(count), last))
        else:
            for person in people:
                for name, (count, last) in list(self.limited.get(person, {}).items()):
                    if last < since:
                        del self.limited[person][name]
                    else:
                        found.append(Limited(person, name, count, last))
        return sorted(found, key=lambda x: (-x.last_at, x.person, x.rule))


class RateLimitedView(BaseModel):
    user_id: int
    display_name: str
    rule: str = Field(description="Which limit: " + ", ".join(RULES))
    what: str
    count: int = Field(description=f"429 answers in the last {LIMITED_TTL // 60} minutes")
    last_at: datetime


def limited_view(hit: Limited, display_name: str) -> RateLimitedView:
    return RateLimitedView(
        user_id=hit.person,
        display_name=display_name,
        rule=hit.rule,
        what=RULES[hit.rule].what if hit.rule in RULES else hit.rule,
        count=hit.count,
        last_at=datetime.fromtimestamp(hit.last_at, UTC),
    )


def rate_limits_of(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits
