"""Contract-driven fuzzing (issue 15, item 8): schemathesis generates requests from the OpenAPI
document, valid ones and invalid ones, for every operation, as a student, a moderator and an
instructor (personal access tokens), on SQLite and PostgreSQL, against the in-process app.
Every answer must be no 5xx, a status the document declares for the operation, a declared
content type and a body matching the declared schema.

Bounded and reproducible: a fixed number of examples per operation and generation mode
(PEERBOARD_FUZZ_EXAMPLES, default 5), derandomized, no example database. A failure names the
operation and the request (as a curl command) that broke the contract.

Then sequences (stateful): schemathesis chains operations through the links it infers from
the document (an id a response gives is the next request's path parameter: a reply then
its edit, revisions and deletion, a group rule then its removal), starting from the rows
that exist, under the same checks (PEERBOARD_FUZZ_SEQUENCES scenarios of up to 8 calls,
default 200).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import schemathesis
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import Phase as HypothesisPhase
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import select

from services import discussions, tokens
from services.db import make_engine, make_sessionmaker, transaction
from services.models import Post
from tests.conftest import make_settings, run_async
from tests.discussion_support import build_forum
from web.app import create_app

EXAMPLES = int(os.environ.get("PEERBOARD_FUZZ_EXAMPLES", "5"))
SEQUENCES = int(os.environ.get("PEERBOARD_FUZZ_SEQUENCES", "200"))
BASE = "http://127.0.0.1:8000"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
ROLES = {"student": "ada", "moderator": "mona", "instructor": "ivo"}


async def _seed(database_url: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A cohort with an open assignment, a thread, and a token for each role; the tokens,
    and the ids of what exists (path parameters that reach real rows)."""
    engine = make_engine(database_url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            forum = await build_forum(session)
            secrets = {}
            for role, name in ROLES.items():
                actor = await forum.actor(session, name)
                raw, _ = await tokens.create_token(
                    session, actor=actor, name="fuzz", expires_in_days=1
                )
                secrets[role] = raw
            ada = await forum.actor(session, "ada")
            thread = await discussions.create_thread(
                session, actor=ada, question_id=forum.question_ids[0], title="T", body="Hello"
            )
            opening = (
                await session.execute(select(Post).where(Post.thread_id == thread.id))
            ).scalar_one()
    finally:
        await engine.dispose()
    real = {
        "cohort": "psy",
        "assignment": forum.assignment_id,
        "question": forum.question_ids[0],
        "thread": thread.public_id,
        "post": opening.public_id,
        "user": forum.users["ben"],
    }
    return secrets, real


class Served:
    """The app with its lifespan running on an event loop of its own thread, so that
    hypothesis (synchronous) can send it requests one by one."""

    def __init__(self, database_url: str) -> None:
        self.app = create_app(make_settings(database_url, PEERBOARD_PHASE_TICK_SECONDS="0"))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.manager: LifespanManager | None = None
        self.client: httpx.AsyncClient | None = None
        self.statuses: Counter[int] = Counter()

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=120)

    async def _start(self) -> None:
        self.manager = LifespanManager(self.app)  # made on its loop: it detects the library
        await self.manager.__aenter__()
        transport = httpx.ASGITransport(app=self.manager.app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url=BASE, timeout=60)

    async def _stop(self) -> None:
        assert self.client is not None and self.manager is not None
        await self.client.aclose()
        await self.manager.__aexit__(None, None, None)

    def request(self, kwargs: dict[str, Any]) -> httpx.Response:
        assert self.client is not None
        kwargs = dict(kwargs)
        if "data" in kwargs and isinstance(kwargs["data"], bytes | str):
            kwargs["content"] = kwargs.pop("data")
        for unused in ("allow_redirects", "verify", "cert", "timeout", "proxies", "stream"):
            kwargs.pop(unused, None)
        if cookies := kwargs.pop("cookies", None):  # httpx wants them as a header
            kwargs.setdefault("headers", {})["Cookie"] = "; ".join(
                f"{name}={value}" for name, value in cookies.items()
            )
        # Built and read first: a multipart (file) body is a stream, and the checks read the
        # request back when they describe a failure.
        try:
            request = self.client.build_request(**kwargs)
            self._run(request.aread())
        except (TypeError, AttributeError, ValueError) as exc:
            # A generated multipart body no HTTP client can encode (a number as a file): not a
            # request the app could ever receive.
            raise Unsendable(str(exc)) from exc
        response: httpx.Response = self._run(self.client.send(request))
        self.statuses[response.status_code] += 1
        return response

    @contextmanager
    def running(self) -> Iterator[Served]:
        self.thread.start()
        self._run(self._start())
        try:
            yield self
        finally:
            self._run(self._stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
            self.loop.close()


class Unsendable(Exception):
    """A generated case that cannot be encoded as an HTTP request."""


def _fuzz(
    served: Served,
    operation: Any,
    mode: schemathesis.GenerationMode,
    token: str,
    path_parameters: dict[str, Any] | None,
) -> None:
    streams = "text/event-stream" in str(operation.definition.raw.get("responses", {}))
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[HypothesisPhase.explicit, HypothesisPhase.generate, HypothesisPhase.shrink],
    )
    def check(case: schemathesis.Case) -> None:
        if streams:  # one round of a live stream, never an endless one
            case.query = {**(case.query or {}), "poll": "1"}
        kwargs = case.as_transport_kwargs(
            base_url=BASE, headers={"Authorization": f"Bearer {token}"}
        )
        try:
            response = served.request(kwargs)
        except Unsendable:
            reject()
        case.validate_response(response, checks=CHECKS)

    check()


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_operation_keeps_the_contract(database_url: str, role: str) -> None:
    secrets, real = run_async(_seed(database_url))
    served = Served(database_url)
    failures: list[str] = []
    with served.running():
        document = served._run(served.client.get("/api/v1/openapi.json")).json()  # type: ignore[union-attr]
        schema = schemathesis.openapi.from_dict(document)
        operations = sorted(
            (result.ok() for result in schema.get_all_operations()),
            key=lambda op: op.method.upper() == "DELETE",  # revoking its token: last
        )
        assert len(operations) > 40
        runs = [(mode, None) for mode in schemathesis.GenerationMode] + [
            (schemathesis.GenerationMode.POSITIVE, real)
        ]  # and on rows that exist
        for operation in operations:
            if os.environ.get("PEERBOARD_FUZZ_TRACE"):
                print(operation.label, sorted(served.statuses.items()))
            names = {p.name for p in operation.path_parameters}
            for mode, ids in runs:
                known = {k: v for k, v in (ids or {}).items() if k in names}
                if ids is not None and (not known or set(known) != names):
                    continue
                try:
                    _fuzz(served, operation, mode, secrets[role], known or None)
                except Unsatisfiable:  # nothing in the operation can be made invalid
                    continue
                except Exception as exc:  # collect every operation's failure, then report
                    failures.append(f"{operation.label} [{mode}]: {exc}")
    assert not failures, "\n\n".join(failures)
    # It did reach the app, and not only to be refused.
    print(role, sorted(served.statuses.items()))
    assert served.statuses.total() >= len(operations) * EXAMPLES
    assert served.statuses[200] + served.statuses[201] > 0


def _pinned_to(document: dict[str, Any], real: dict[str, Any]) -> dict[str, Any]:
    """The document with each path parameter naming a row that exists pinned to that row:
    sequences start from real rows; what they create reaches them through links."""
    for item in document["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter["name"] in real:
                    kind = parameter["schema"]["type"]
                    parameter["schema"] = {"type": kind, "enum": [real[parameter["name"]]]}
    return document


@pytest.mark.parametrize("role", sorted(ROLES))
def test_sequences_of_operations_keep_the_contract(database_url: str, role: str) -> None:
    secrets, real = run_async(_seed(database_url))
    served = Served(database_url)
    calls: Counter[tuple[str, int]] = Counter()
    with served.running():
        document = served._run(served.client.get("/api/v1/openapi.json")).json()  # type: ignore[union-attr]
        schema = schemathesis.openapi.from_dict(_pinned_to(document, real))
        token = secrets[role]

        class Sequences(schema.as_state_machine()):  # type: ignore[misc]
            def call(self, case: schemathesis.Case, **kwargs: Any) -> Response:
                responses = case.operation.definition.raw.get("responses", {})
                if "text/event-stream" in str(responses):  # one round, never endless
                    case.query = {**(case.query or {}), "poll": "1"}
                headers = {"Authorization": f"Bearer {token}"}
                try:
                    answer = served.request(
                        case.as_transport_kwargs(base_url=BASE, headers=headers)
                    )
                except Unsendable:
                    reject()
                calls[(case.operation.label, answer.status_code)] += 1
                return Response.from_any(answer)

            def validate_response(
                self, response: Response, case: schemathesis.Case, *args: Any, **kwargs: Any
            ) -> None:
                case.validate_response(response, checks=CHECKS)

        Sequences.run(
            settings=settings(
                max_examples=SEQUENCES,
                stateful_step_count=8,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
        )
    print(role, sorted(Counter(status for (_, status) in calls.elements()).items()))
    assert calls.total() >= SEQUENCES
    # Sequences did more than get refused: something was made, changed or removed.
    assert any(status in (201, 204) for _, status in calls), calls
