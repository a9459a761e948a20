"""The explicit route table. API routes carry their OpenAPI operation beside them."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from services.importing import AssignmentSpec
from services.views import AssignmentSummaryView, AssignmentView, CohortView
from web.endpoints import api, health, pages
from web.openapi import Operation

STATIC_DIR = Path(__file__).parent / "static"
API = "/api/v1"

ASSIGNMENT_TEXT_SCHEMA = {
    "type": "string",
    "description": (
        "The plain-text assignment format: title line(s), one paragraph per question, "
        "'Paper For Above instruction', the sample paper, 'References', one per line."
    ),
}


class ApiRoute(Route):
    """A route of the JSON API, documented by its Operation."""

    def __init__(
        self, path: str, endpoint: object, *, methods: list[str], name: str, operation: Operation
    ) -> None:
        super().__init__(API + path, endpoint, methods=methods, name=name)  # type: ignore[arg-type]
        self.operation = operation


def api_routes() -> list[ApiRoute]:
    return [
        ApiRoute("/cohorts", api.list_cohorts, methods=["GET"], name="api:cohorts:list",
                 operation=Operation("Cohorts I can see", "cohorts", {200: list[CohortView]})),
        ApiRoute("/cohorts", api.create_cohort, methods=["POST"], name="api:cohorts:create",
                 operation=Operation("Create a cohort (administrators)", "cohorts",
                                     {201: CohortView},
                                     request_body={"application/json": api.CohortCreate},
                                     errors=(400, 404, 409, 415, 422))),
        ApiRoute("/cohorts/{cohort}", api.cohort_detail, methods=["GET"],
                 name="api:cohorts:detail",
                 operation=Operation("A cohort", "cohorts", {200: CohortView}, errors=(404,))),
        ApiRoute("/cohorts/{cohort}/assignments", api.list_assignments, methods=["GET"],
                 name="api:assignments:list",
                 operation=Operation("The cohort's assignments", "assignments",
                                     {200: list[AssignmentSummaryView]}, errors=(404,))),
        ApiRoute("/cohorts/{cohort}/assignments", api.create_assignment, methods=["POST"],
                 name="api:assignments:create",
                 operation=Operation(
                     "Import an assignment (cohort staff)", "assignments", {201: AssignmentView},
                     request_body={"application/json": AssignmentSpec,
                                   "application/toml": ASSIGNMENT_TEXT_SCHEMA | {
                                       "description": "The structured format, as TOML"},
                                   "text/plain": ASSIGNMENT_TEXT_SCHEMA},
                     errors=(400, 404, 415, 422),
                     description="Nothing is stored unless the whole document is valid; "
                                 "`errors` lists each problem with its line or field.")),
        ApiRoute("/assignments/{assignment:int}", api.assignment_detail, methods=["GET"],
                 name="api:assignments:detail",
                 operation=Operation("An assignment with its questions, rubric and references",
                                     "assignments", {200: AssignmentView}, errors=(404,))),
    ]  # fmt: skip


def build_routes() -> list[BaseRoute]:
    return [
        Route("/", pages.home, name="home"),
        Route("/cohorts/{cohort}", pages.cohort_page, name="cohorts:detail"),
        Route("/assignments/{assignment:int}", pages.assignment_page, name="assignments:detail"),
        Route("/healthz", health.healthz, name="healthz"),
        Route("/readyz", health.readyz, name="readyz"),
        Route(f"{API}/openapi.json", api.openapi_document, name="api:openapi"),
        *api_routes(),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
