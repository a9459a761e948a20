"""A student's paper: the page and `GET|PUT /api/v1/assignments/{a}/paper`.

A paper is typed (markdown) or sent as a file (.docx, .pdf, .md, .txt). Files are read
into text by `services.documents` and saved as a typed paper would be; the bytes are
dropped. The file's kind comes from its contents: the name and Content-Type are not trusted.
A page form that fails comes back with what the person had (their typed text, or their
saved draft) and the reason next to the field.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from services import assignments, cohorts, papers
from services.errors import Invalid, Problem
from web.context import unit_of_work
from web.endpoints.pages import page_unit, redirect_with_flash, render_page, require_signed_in
from web.endpoints.parsing import media_type, read_model
from web.errors import ApiError
from web.responses import json_response

# The paths that take files; the body limit for them is PEERBOARD_MAX_UPLOAD_BYTES.
UPLOAD_PATHS = re.compile(r"/(?:api/v1/)?assignments/[0-9]+/paper")
# Room for the multipart envelope and the form's other fields around the file itself.
UPLOAD_ENVELOPE_BYTES = 64 * 1024

# Media types a file may be sent as (the bytes decide what it is).
FILE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/pdf",
        "text/markdown",
        "text/plain",
        "application/octet-stream",
    }
)
FILE_FIELD = "file"
ACCEPT = ".docx,.pdf,.md,.markdown,.txt," + ",".join(sorted(FILE_MEDIA_TYPES - {
    "application/octet-stream"}))  # fmt: skip


class PaperWrite(BaseModel):
    body: str = Field(max_length=200_000, description="The paper, in markdown")
    submit: bool = Field(default=False, description="Submit it (drafts are saved either way)")


FILE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "contentMediaType": "application/octet-stream",
    "description": "The paper as a file: .docx, .pdf, or UTF-8 markdown/text. Saved as a draft.",
}
MULTIPART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [FILE_FIELD],
    "properties": {
        FILE_FIELD: {
            "type": "string",
            "contentMediaType": "application/octet-stream",
            "description": "The paper: .docx, .pdf, or UTF-8 markdown/text",
        },
        "submit": {
            "type": "string",
            "enum": ["true", "false"],
            "description": "Submit it (drafts are saved either way)",
        },
    },
}
PAPER_BODIES: dict[str, Any] = {
    "application/json": PaperWrite,
    "multipart/form-data": MULTIPART_SCHEMA,
    **{kind: FILE_SCHEMA for kind in sorted(FILE_MEDIA_TYPES)},
}
SAVE_DESCRIPTION = (
    "Refused outside the open phase (late papers per the late policy during review); every "
    "save keeps a version. Send JSON (typed markdown), multipart/form-data with a `file` (and "
    "`submit`), or the file itself as the body (saved as a draft). A file's kind is read from "
    "its bytes (Word .docx, PDF, UTF-8 text), not its name or Content-Type; its text becomes "
    "the paper's body and the file is not kept. Wrong kind, damaged or encrypted files, and "
    "files without text are refused (422, `errors[].field` = `file`); larger than "
    "PEERBOARD_MAX_UPLOAD_BYTES: 413."
)


def _assignment_id(request: Request) -> int:
    value: int = request.path_params["assignment"]
    return value


def _max_file_bytes(request: Request) -> int:
    limit: int = request.app.state.settings.max_upload_bytes
    return limit


def _too_large(request: Request) -> Problem:
    limit = _max_file_bytes(request)
    return Problem(f"is larger than {limit / (1024 * 1024):.3g} MB", field=FILE_FIELD)


def _truthy(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower() in ("true", "on", "1", "yes")


async def _read_upload(request: Request, upload: UploadFile) -> bytes:
    limit = _max_file_bytes(request)
    data = await upload.read(limit + 1)
    await upload.close()
    if len(data) > limit:
        raise ApiError(413, _too_large(request).describe(), problems=[_too_large(request)])
    return data


# --- JSON API ------------------------------------------------------------------------------


async def api_my_paper(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        state = await papers.get_my_paper(
            session, actor=actor, assignment_id=_assignment_id(request)
        )
        return json_response(papers.present_my_paper(state, actor=actor))


async def api_save_paper(request: Request) -> Response:
    kind = media_type(request)
    if kind == "application/json" or kind.endswith("+json"):
        data = await read_model(request, PaperWrite)
        async with unit_of_work(request) as (session, actor):
            state = await papers.save_paper(
                session,
                actor=actor,
                assignment_id=_assignment_id(request),
                body=data.body,
                submit=data.submit,
            )
            view = papers.present_my_paper(state, actor=actor)
        return json_response(view)
    if kind == "multipart/form-data":
        async with request.form(max_files=1, max_fields=4) as form:
            upload = form.get(FILE_FIELD)
            if not isinstance(upload, UploadFile):
                raise Invalid(problems=[Problem("is missing: send the paper file", field="file")])
            raw = await _read_upload(request, upload)
            submit = _truthy(form.get("submit"))
    elif kind in FILE_MEDIA_TYPES:
        raw = await request.body()
        if len(raw) > _max_file_bytes(request):
            raise ApiError(413, _too_large(request).describe(), problems=[_too_large(request)])
        submit = False
    else:
        raise ApiError(
            415,
            "Send the paper as application/json, as multipart/form-data with a `file`, or as "
            "the file itself (a Word .docx, PDF, markdown or plain-text file).",
        )
    async with unit_of_work(request) as (session, actor):
        state, _ = await papers.save_paper_file(
            session, actor=actor, assignment_id=_assignment_id(request), data=raw, submit=submit
        )
        view = papers.present_my_paper(state, actor=actor)
    return json_response(view)


# --- the page ------------------------------------------------------------------------------


async def _render(
    request: Request,
    *,
    typed: str | None = None,
    problems: list[Problem] | None = None,
    status: int = 200,
    form: FormData | None = None,
) -> Response:
    assignment_id = _assignment_id(request)
    # A re-render after a refused POST is still that POST: its form carries the CSRF token.
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        detail = await assignments.get_assignment(
            session, actor=caller.actor, assignment_id=assignment_id
        )
        state = await papers.get_my_paper(session, actor=caller.actor, assignment_id=assignment_id)
        view = papers.present_my_paper(state, actor=caller.actor)
        context: dict[str, Any] = {
            "assignment": assignments.present_assignment(detail, actor=caller.actor),
            "cohort": cohorts.present_cohort(detail.cohort, actor=caller.actor),
        }
    errors: dict[str, str] = {}
    for problem in problems or []:
        key = problem.field if problem.field in (FILE_FIELD, "body") else ""
        errors.setdefault(key, problem.message)
    return render_page(
        request,
        "paper.html",
        {**context, "paper": view, "body": view.body if typed is None else typed,
         "errors": errors, "accept": ACCEPT, "max_file_mb": _max_file_bytes(request) / 2**20},
        status=status,
    )  # fmt: skip


async def paper_page(request: Request) -> Response:
    return await _render(request)


def _upload_of(form: FormData) -> UploadFile | None:
    upload = form.get(FILE_FIELD)
    # A form sent without choosing a file still has the part, with an empty name.
    return upload if isinstance(upload, UploadFile) and upload.filename else None


async def paper_form(request: Request) -> Response:
    """Save (or submit) the typed paper, or the paper read from an uploaded file."""
    async with request.form(max_files=1, max_fields=8) as form:
        submit = form.get("action") == "submit"
        upload = _upload_of(form)
        typed = form.get("body")
        typed = typed if isinstance(typed, str) else ""
        raw = b""
        if upload is not None:
            try:
                raw = await _read_upload(request, upload)
            except ApiError as too_large:
                return await _render(
                    request, problems=_on_file(too_large.problems), status=413, form=form
                )
        try:
            async with page_unit(request, form) as (session, caller):
                if (redirect := require_signed_in(request, caller)) is not None:
                    return redirect
                if upload is not None:
                    await papers.save_paper_file(
                        session, actor=caller.actor, assignment_id=_assignment_id(request),
                        data=raw, submit=submit,
                    )  # fmt: skip
                else:
                    await papers.save_paper(
                        session, actor=caller.actor, assignment_id=_assignment_id(request),
                        body=typed, submit=submit,
                    )  # fmt: skip
        except Invalid as error:
            # Rolled back: nothing was saved. The page again, with what the person had: the
            # text they typed, or (after a refused file) their saved draft.
            problems = error.problems or [Problem(str(error))]
            if upload is not None:
                return await _render(request, problems=_on_file(problems), status=422, form=form)
            return await _render(request, typed=typed, problems=problems, status=422, form=form)
    if upload is not None:
        message = (
            "Your paper is submitted, as read from your file: check the text below."
            if submit
            else "The text of your file is saved as your draft: check it below, then submit."
        )
    else:
        message = "Your paper is submitted." if submit else "Your draft is saved."
    path = request.app.url_path_for("reviews:paper", assignment=str(_assignment_id(request)))
    return redirect_with_flash(request, str(path), message)


def _on_file(problems: list[Problem]) -> list[Problem]:
    """Problems with the file, as sentences about it ("This file is empty.")."""
    return [
        Problem(f"This file {p.message}." if p.field == FILE_FIELD else p.message, field=p.field)
        for p in problems
    ]
