"""The OpenAPI document is valid 3.1, covers exactly the served API, and tells the truth."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Route

from tests.web.test_api_assignments import STRUCTURED


async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def test_document_is_valid_openapi_3_1(client: httpx.AsyncClient) -> None:
    doc = await document(client)
    assert doc["openapi"] == "3.1.0"
    validate(doc)


async def test_every_api_route_is_documented_and_nothing_else(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    doc = await document(client)
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    served = {
        (route.path_format, method.lower())
        for route in app.routes
        if isinstance(route, Route)
        and route.path.startswith("/api/v1/")
        and route.name != "api:openapi"
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert documented == served


def check(doc: dict[str, Any], path: str, method: str, response: httpx.Response) -> None:
    """Validate a real response against the schema the document gives for it."""
    op = doc["paths"][path][method]
    entry = op["responses"][str(response.status_code)]
    if "$ref" in entry:
        entry = doc["components"]["responses"][entry["$ref"].rsplit("/", 1)[1]]
    sent = response.headers["content-type"].split(";")[0]
    assert sent in entry["content"], f"{sent} is not documented: {list(entry['content'])}"
    spec = entry["content"][sent]
    schema = {**spec["schema"], "components": doc["components"]}
    body = response.json() if sent.endswith("json") else response.text
    jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)


async def test_real_responses_match_their_documented_schemas(
    client: httpx.AsyncClient, fixture_text: str
) -> None:
    doc = await document(client)
    created = await client.post("/api/v1/cohorts", json={"slug": "psy", "name": "PSY"})
    check(doc, "/api/v1/cohorts", "post", created)
    check(doc, "/api/v1/cohorts", "get", await client.get("/api/v1/cohorts"))
    check(doc, "/api/v1/cohorts/{cohort}", "get", await client.get("/api/v1/cohorts/psy"))
    check(doc, "/api/v1/cohorts/{cohort}", "get", await client.get("/api/v1/cohorts/nope"))
    text = await client.post(
        "/api/v1/cohorts/psy/assignments",
        content=fixture_text.encode(),
        headers={"content-type": "text/plain"},
    )
    check(doc, "/api/v1/cohorts/{cohort}/assignments", "post", text)
    structured = await client.post("/api/v1/cohorts/psy/assignments", json=STRUCTURED)
    check(doc, "/api/v1/cohorts/{cohort}/assignments", "post", structured)
    bad = await client.post(
        "/api/v1/cohorts/psy/assignments",
        content=b"Title only",
        headers={"content-type": "text/plain"},
    )
    check(doc, "/api/v1/cohorts/{cohort}/assignments", "post", bad)
    listing = await client.get("/api/v1/cohorts/psy/assignments")
    check(doc, "/api/v1/cohorts/{cohort}/assignments", "get", listing)
    one = await client.get(f"/api/v1/assignments/{text.json()['id']}")
    check(doc, "/api/v1/assignments/{assignment}", "get", one)


async def test_documented_request_schema_accepts_the_structured_example(
    client: httpx.AsyncClient,
) -> None:
    doc = await document(client)
    body = doc["paths"]["/api/v1/cohorts/{cohort}/assignments"]["post"]["requestBody"]
    schema = {**body["content"]["application/json"]["schema"], "components": doc["components"]}
    jsonschema.validate(STRUCTURED, schema, cls=jsonschema.Draft202012Validator)
    assert set(body["content"]) == {"application/json", "application/toml", "text/plain"}
