"""Contract-driven fuzzing (issue 15, item 8): schemathesis generates requests from the OpenAPI
document, valid ones and invalid ones, for every operation, as a student, a moderator and an
instructor (personal access tokens), on SQLite and PostgreSQL, against the in-process app.
Every answer must be no 5xx, a status the document declares for the operation, a declared
content type and a body matching the declared schema.

Bounded and reproducible: a fixed number of examples per operation and generation mode
(PEERBOARD_FUZZ_EXAMPLES, default 5), derandomized, no example database. A failure names the
operation and the request (as a curl command) that broke the contract.

Then sequences (stateful): schemathesis chains operations through the links it infers from
the document (an id or a value a response gives feeds the next request: a reply then its
edit, revisions and deletion; an allocation then a task's move to a listed reviewer),
starting from the rows that exist, under the same checks (PEERBOARD_FUZZ_SEQUENCES scenarios
of up to 8 calls, default 200; on SQLite, whose file is restored before each scenario).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import closing, contextmanager
from pathlib import Path
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

from services import discussions, exemplars, papers, phases, tokens, webhooks
from services.db import make_engine, make_sessionmaker, transaction
from services.models import ExemplarKind, Phase, Post, ReviewTask
from services.policy import Actor
from tests.conftest import make_settings, run_async
from tests.discussion_support import build_forum
from tests.review_support import import_review_assignment, paper_text
from web.app import create_app
from web.ratelimit import RULES

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


async def _seed(database_url: str) -> tuple[dict[str, str], dict[str, Any], int]:
    """A cohort with an open assignment, a thread, a review round in progress, an exemplar,
    a webhook endpoint and a token for each role; the tokens, the ids of what exists (path
    parameters that reach real rows), and the review round's assignment."""
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
            # A review round in progress (papers in, tasks out), an exemplar and a webhook
            # endpoint: rows for the operations on tasks, exemplars and endpoints to reach.
            review_round = await import_review_assignment(session, slug="psy", k=1)
            for name in ("ada", "ben", "chen"):
                await papers.save_paper(
                    session,
                    actor=await forum.actor(session, name),
                    assignment_id=review_round,
                    body=paper_text(name),
                    submit=True,
                )
            await phases.change_phase(
                session, actor=Actor.system(), assignment_id=review_round, phase=Phase.review
            )
            task = (
                await session.execute(
                    select(ReviewTask).where(
                        ReviewTask.assignment_id == review_round,
                        ReviewTask.reviewer_id == forum.users["ada"],
                    )
                )
            ).scalar_one()
            ivo = await forum.actor(session, "ivo")
            exemplar = await exemplars.nominate(
                session,
                actor=ivo,
                assignment_id=forum.assignment_id,
                kind=ExemplarKind.post,
                source=opening.public_id,
                question_id=forum.question_ids[0],
            )
            endpoint = await webhooks.register(
                session,
                actor=ivo,
                cohort_slug="psy",
                url="https://hooks.example.invalid/peerboard",
                events=list(webhooks.EVENTS),
                allow_private=False,
            )
    finally:
        await engine.dispose()
    real = {
        "cohort": "psy",
        "assignment": forum.assignment_id,
        "question": forum.question_ids[0],
        "thread": thread.public_id,
        "post": opening.public_id,
        "user": forum.users["ben"],
        "task": task.public_id,
        "exemplar": exemplar.public_id,
        "webhook": endpoint.id,
    }
    return secrets, real, review_round


class Served:
    """The app with its lifespan running on an event loop of its own thread, so that
    hypothesis (synchronous) can send it requests one by one."""

    def __init__(self, database_url: str, **settings: Any) -> None:
        # No background jobs: nothing writes between requests, and the seeded webhook
        # endpoint's deliveries are not attempted (its host does not exist).
        quiet = {
            "PEERBOARD_PHASE_TICK_SECONDS": "0",
            "PEERBOARD_WEBHOOK_TICK_SECONDS": "0",
            "PEERBOARD_LTI_TICK_SECONDS": "0",
        }
        self.app = create_app(make_settings(database_url, **{**quiet, **settings}))
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

    def send_case(self, case: schemathesis.Case, token: str) -> httpx.Response:
        """A generated case, sent with the role's token; a live stream's operation asks for
        one round (`poll=1`), never an endless stream. A case no client could encode is
        rejected (not a request the app could ever receive)."""
        if "text/event-stream" in str(case.operation.definition.raw.get("responses", {})):
            case.query = {**(case.query or {}), "poll": "1"}
        headers = {"Authorization": f"Bearer {token}"}
        try:
            return self.request(case.as_transport_kwargs(base_url=BASE, headers=headers))
        except Unsendable:
            reject()
            raise  # not reached: reject() raises

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
        case.validate_response(served.send_case(case, token), checks=CHECKS)

    check()


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_operation_keeps_the_contract(database_url: str, role: str) -> None:
    secrets, real, review_round = run_async(_seed(database_url))
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
            (schemathesis.GenerationMode.POSITIVE, real),
            (schemathesis.GenerationMode.POSITIVE, {**real, "assignment": review_round}),
        ]  # and on rows that exist, an open assignment's and a review round's
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


def _pinned_to(document: dict[str, Any], real: dict[str, list[Any]]) -> dict[str, Any]:
    """The document with each path parameter naming rows that exist pinned to those rows:
    sequences start from real rows; what they create reaches them through links."""
    for item in document["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter["name"] in real:
                    kind = parameter["schema"]["type"]
                    parameter["schema"] = {"type": kind, "enum": real[parameter["name"]]}
    return document


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("role", sorted(ROLES))
def test_sequences_of_operations_keep_the_contract(
    database_url: str, role: str, tmp_path: Path
) -> None:
    """Each scenario starts from the seeded database (restored before it), with no rate
    limit counting across scenarios: Hypothesis needs a scenario's answers to depend on the
    scenario alone (what a response gives feeds the next request). SQLite only: restoring
    a file is instant; the per-operation run above covers PostgreSQL."""
    secrets, real, review_round = run_async(_seed(database_url))
    database = database_url.split(":///", 1)[1]
    seeded = tmp_path / "seeded.db"
    with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(seeded)) as copy:
        source.backup(copy)
    unlimited = {name: ["1000000 per minute"] * 2 for name in RULES}
    served = Served(database_url, PEERBOARD_RATE_LIMITS=unlimited)
    calls: Counter[tuple[str, int]] = Counter()
    with served.running():
        document = served._run(served.client.get("/api/v1/openapi.json")).json()  # type: ignore[union-attr]
        rows = {name: [value] for name, value in real.items()}
        rows["assignment"].append(review_round)
        schema = schemathesis.openapi.from_dict(_pinned_to(document, rows))
        token = secrets[role]

        class Sequences(schema.as_state_machine()):  # type: ignore[misc]
            def setup(self) -> None:
                with (
                    closing(sqlite3.connect(seeded)) as copy,
                    closing(sqlite3.connect(database)) as target,
                ):
                    copy.backup(target)

            def call(self, case: schemathesis.Case, **kwargs: Any) -> Response:
                answer = served.send_case(case, token)
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
                phases=[HypothesisPhase.generate, HypothesisPhase.shrink],
            )
        )
    print(role, sorted(Counter(status for (_, status) in calls.elements()).items()))
    assert calls.total() >= SEQUENCES
    # Sequences did more than get refused: something was made, changed or removed.
    assert any(status in (201, 204) for _, status in calls), calls
