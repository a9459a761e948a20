"""The HTTP shell: health, errors, headers, limits, hosts."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.conftest import People, client_for, make_settings
from web.app import create_app


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok"}


async def test_readyz_reports_an_unreachable_database_as_503() -> None:
    settings = make_settings("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    app = create_app(settings)
    async with LifespanManager(app) as manager, client_for(manager.app) as client:
        assert (await client.get("/healthz")).status_code == 200
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "database_unavailable"


@pytest.mark.parametrize("path", ["/", "/api/v1/cohorts", "/healthz", "/nope", "/api/v1/nope"])
async def test_security_headers_on_every_response(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    csp = response.headers["content-security-policy"]
    assert "object-src 'none'" in csp
    assert "base-uri 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'nonce-" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


async def test_each_page_gets_a_fresh_nonce(client: httpx.AsyncClient) -> None:
    first = (await client.get("/")).headers["content-security-policy"]
    second = (await client.get("/")).headers["content-security-policy"]
    assert first != second


async def test_unknown_api_path_is_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_found"
    assert body["status"] == 404
    assert body["instance"] == "/api/v1/nothing-here"


async def test_unknown_page_is_a_readable_html_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert '<h1 id="error-heading">Not Found</h1>' in response.text
    assert "Traceback" not in response.text


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/cohorts")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_body_over_the_limit_is_413_whether_announced_or_chunked(
    client: httpx.AsyncClient,
) -> None:
    limit = 1024 * 1024
    announced = await client.post(
        "/api/v1/cohorts",
        content=b"x" * (limit + 1),
        headers={"content-type": "application/json"},
    )
    assert announced.status_code == 413
    assert announced.json()["code"] == "payload_too_large"

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(17):
            yield b"y" * 65536

    chunked = await client.post(
        "/api/v1/cohorts/demo/assignments",
        content=chunks(),
        headers={"content-type": "text/plain"},
    )
    assert chunked.status_code == 413


async def test_unexpected_host_header_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"host": "evil.example"})
    assert response.status_code == 400


async def test_a_server_error_is_a_problem_without_a_traceback(database_url: str) -> None:
    from starlette.routing import Route

    async def boom(request: object) -> None:
        raise RuntimeError("secret internals")

    app = create_app(make_settings(database_url))
    app.router.routes.insert(0, Route("/api/v1/boom", boom))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            response = await c.get("/api/v1/boom")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "secret internals" not in response.text


async def test_a_killed_database_connection_is_not_handed_out_again(
    database_url: str, client: httpx.AsyncClient
) -> None:
    """pool_pre_ping: after PostgreSQL kills every backend of the app (as a restart or an
    idle-connection reaper would), the next request still gets a working connection."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has no server to lose")
    import asyncpg
    from sqlalchemy.engine import make_url

    assert (await client.get("/api/v1/cohorts")).status_code == 200  # a pooled connection
    url = make_url(database_url)
    conn = await asyncpg.connect(
        user=url.username, host=url.host, port=url.port or 5432, database=url.database
    )
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND application_name = 'peerboard' AND pid <> pg_backend_pid()",
            url.database,
        )
    finally:
        await conn.close()
    assert killed >= 1
    for _ in range(3):
        response = await client.get("/api/v1/cohorts")
        assert response.status_code == 200, response.text
    assert (await client.get("/readyz")).status_code == 200


async def test_one_request_never_sees_what_another_left_in_the_state(
    people: People, stranger: httpx.AsyncClient
) -> None:
    """The in-process runner hands every request the same lifespan-state dict (uvicorn
    copies it): the app copies it itself, so a visitor's error page never says "Signed in
    as" someone who asked before them."""
    ada = await people.client("adacanary")
    assert "Adacanary" in (await ada.get("/")).text
    page = await stranger.get("/no/such/page")
    assert page.status_code == 404 and "Adacanary" not in page.text
    assert "Signed in as" not in page.text
