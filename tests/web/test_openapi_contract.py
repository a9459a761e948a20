"""The OpenAPI document declares what the API reads and answers (issue 15, item 8): every
path parameter typed as the route's convertor takes it, the query parameters and headers
endpoints read, and the error statuses any request can meet. Before, integer ids were
strings, no query parameter or header was declared, and 401 and 503 were missing."""

from __future__ import annotations

import re

import httpx

from tests.web.test_openapi import document

INTEGER_ID = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}


async def test_every_operation_declares_its_path_parameters_and_common_errors(
    client: httpx.AsyncClient,
) -> None:
    doc = await document(client)
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            declared = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "path"}
            assert set(declared) == set(re.findall(r"\{([^}]+)\}", path)), (method, path)
            for status in ("401", "500", "503"):
                assert status in op["responses"], (method, path, status)
            if declared:
                assert "404" in op["responses"], (method, path)
            if "requestBody" in op:
                assert {"400", "413", "415", "422"} <= set(op["responses"]), (method, path)
            for name in ("assignment", "question", "user", "token", "rule"):
                if name in declared:
                    assert declared[name]["schema"] == INTEGER_ID, (method, path, name)
    unavailable = doc["components"]["responses"]["Unavailable"]
    assert unavailable["headers"]["Retry-After"]["required"] is True


def _params(doc: dict[str, object], path: str, method: str) -> dict[tuple[str, str], object]:
    op = doc["paths"][path][method]  # type: ignore[index]
    return {(p["in"], p["name"]): p["schema"] for p in op.get("parameters", [])}


async def test_query_parameters_and_headers_are_declared(client: httpx.AsyncClient) -> None:
    doc = await document(client)
    thread = _params(doc, "/api/v1/threads/{thread}", "get")
    assert {("query", n) for n in ("page", "per_page", "sort", "focus")} <= set(thread)
    assert thread[("query", "per_page")] == {"type": "integer", "minimum": 1, "maximum": 200}
    for path in (
        "/api/v1/threads/{thread}/events",
        "/api/v1/assignments/{assignment}/review-events",
        "/api/v1/assignments/{assignment}/workspace/events",
    ):
        stream = _params(doc, path, "get")
        assert {("query", "poll"), ("query", "last_event_id"), ("header", "Last-Event-ID")} <= set(
            stream
        )
    for path, method in (
        ("/api/v1/questions/{question}/threads", "post"),
        ("/api/v1/threads/{thread}/posts", "post"),
    ):
        assert ("header", "Idempotency-Key") in _params(doc, path, method)
    assert ("query", "q") in _params(doc, "/api/v1/search", "get")
    exports = _params(doc, "/api/v1/assignments/{assignment}/exports/{kind}.{format}", "get")
    assert ("query", "view") in exports
    assert exports[("path", "format")] == {"type": "string", "enum": ["csv", "json"]}


async def test_request_body_integers_are_bounded_to_the_column_range(
    client: httpx.AsyncClient,
) -> None:
    doc = await document(client)
    exclusion = doc["components"]["schemas"]["ExclusionCreate"]["properties"]["reviewer"]
    assert exclusion["maximum"] == 2**31 - 1
    assert exclusion["minimum"] == -(2**31)
