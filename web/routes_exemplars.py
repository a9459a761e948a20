"""Routes of the exemplars and exports area (issue 6)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from services.exports import KINDS as EXPORT_KINDS
from services.views import ExemplarView, WorkspaceView
from web.endpoints import exemplars as ex
from web.endpoints import exports, workspace
from web.openapi import (
    EXEMPLAR_QUESTION,
    EXPORT_VIEW,
    SSE,
    SSE_SCHEMA,
    STREAM,
    ApiRoute,
    Operation,
)

ERRORS = (400, 403, 404, 415, 422)


def page_routes() -> list[BaseRoute]:
    return [
        Route("/assignments/{assignment:id}/exemplars", ex.gallery_page,
              name="exemplars:gallery"),
        Route("/exemplars/{exemplar:public}/attribution", ex.attribution_form, methods=["POST"],
              name="exemplars:attribution"),
        Route("/assignments/{assignment:id}/workspace", workspace.workspace_page,
              name="workspace"),
        Route("/exemplars/nominate", ex.nominate_form, methods=["POST"],
              name="exemplars:nominate"),
        Route("/exemplars/{exemplar:public}/move", ex.move_form, methods=["POST"],
              name="exemplars:move"),
        Route("/exemplars/{exemplar:public}/edit", ex.edit_form, methods=["POST"],
              name="exemplars:edit"),
    ]  # fmt: skip


def api_routes() -> list[ApiRoute]:
    return [
        ApiRoute("/assignments/{assignment:id}/exemplars", ex.list_exemplars, methods=["GET"],
                 name="api:exemplars:list",
                 operation=Operation(
                     "The exemplar gallery (?question=ID, or ?question=none for the whole "
                     "assignment)", "exemplars", {200: list[ExemplarView]}, errors=(400, 404),
                     params=(EXEMPLAR_QUESTION,),
                     description="Curator order. Students see published exemplars the author "
                                 "has not declined, under the author's alias unless they chose "
                                 "to be named; curators also see drafts, names and whether the "
                                 "original changed since the snapshot.")),
        ApiRoute("/assignments/{assignment:id}/exemplars", ex.create_exemplar,
                 methods=["POST"], name="api:exemplars:create",
                 operation=Operation("Nominate an exemplar (moderators and instructors)",
                                     "exemplars", {201: ExemplarView},
                                     request_body={"application/json": ex.ExemplarCreate},
                                     errors=ERRORS)),
        ApiRoute("/exemplars/{exemplar:public}", ex.exemplar_detail, methods=["GET"],
                 name="api:exemplars:detail",
                 operation=Operation("One exemplar", "exemplars", {200: ExemplarView},
                                     errors=(404,))),
        ApiRoute("/exemplars/{exemplar:public}", ex.update_exemplar, methods=["PATCH"],
                 name="api:exemplars:update",
                 operation=Operation("Edit note, order, visibility or question", "exemplars",
                                     {200: ExemplarView},
                                     request_body={"application/json": ex.ExemplarUpdate},
                                     errors=(*ERRORS, 409))),
        ApiRoute("/exemplars/{exemplar:public}", ex.delete_exemplar, methods=["DELETE"],
                 name="api:exemplars:delete",
                 operation=Operation("Remove an exemplar", "exemplars", {204: None},
                                     errors=(403, 404))),
        ApiRoute("/exemplars/{exemplar:public}/refresh", ex.refresh_exemplar, methods=["POST"],
                 name="api:exemplars:refresh",
                 operation=Operation("Take a new snapshot of a changed original", "exemplars",
                                     {200: ExemplarView}, errors=ERRORS)),
        ApiRoute("/exemplars/{exemplar:public}/attribution", ex.choose_attribution, methods=["PUT"],
                 name="api:exemplars:attribution",
                 operation=Operation(
                     "The author chooses: shown anonymously, with their name, or not at all",
                     "exemplars", {200: ExemplarView},
                     request_body={"application/json": ex.ConsentChoice}, errors=ERRORS)),
        ApiRoute("/assignments/{assignment:id}/workspace", workspace.workspace_json,
                 methods=["GET"], name="api:workspace",
                 operation=Operation(
                     "Where the assignment stands (moderators and instructors)", "workspace",
                     {200: WorkspaceView}, errors=(404,))),
        ApiRoute("/assignments/{assignment:id}/workspace/events", workspace.workspace_events,
                 methods=["GET"], name="api:workspace:events",
                 operation=Operation(
                     "The workspace, live (text/event-stream)", "workspace", {200: SSE_SCHEMA},
                     errors=(404,), media_types=SSE, params=STREAM,
                     description="After any change in the assignment (posts, flags, papers, "
                                 "reviews, phase) one `workspace` event whose data is "
                                 "{\"sections\": {name: HTML}}, the page's sections "
                                 "re-rendered. Moderators and instructors. `?poll=1` returns "
                                 "what is pending after Last-Event-ID and ends.")),
        ApiRoute("/assignments/{assignment:id}/exports/{kind}.{format}", exports.export,
                 methods=["GET"], name="api:exports",
                 operation=Operation(
                     "Export posts, reviews, participation or the audit log as CSV or JSON",
                     "exports",
                     {200: {"description": "CSV: a header row, then one row a record (UTF-8); "
                                           "JSON: an array of objects with the same keys"}},
                     errors=(404, 422, 429), media_types=("text/csv", "application/json"),
                     params=(EXPORT_VIEW,),
                     path_schemas={"kind": {"type": "string", "enum": list(EXPORT_KINDS)},
                                   "format": {"type": "string", "enum": ["csv", "json"]}},
                     description="kind: posts | reviews | participation | audit; format: csv | "
                                 "json. Moderators and instructors take every kind (audit: "
                                 "instructors); ?view=student gives them the posts as a "
                                 "classmate who has posted in every question sees them "
                                 "(aliases, no hidden posts). Students of the cohort take the "
                                 "posts only, always as they read the discussion (whatever "
                                 "`view` says): the threads they may see (post first "
                                 "respected), no posts hidden from them, aliases on "
                                 "classmates' anonymous posts, no emails, times to the minute; "
                                 "other kinds are 404 for them. Streams; cells starting with "
                                 "= + - @ tab or CR are prefixed with '.")),
    ]  # fmt: skip
