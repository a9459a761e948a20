"""Exemplar gallery and curation: JSON API and pages."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from services import assignments, exemplars
from services.models import Attribution, ExemplarKind, ExemplarStatus, Question
from services.views import AssignmentView, ExemplarView
from web.context import unit_of_work
from web.endpoints.pages import (
    form_field,
    page_unit,
    redirect_with_flash,
    render_page,
    signin_redirect,
)
from web.endpoints.parsing import read_model
from web.errors import ApiError
from web.responses import json_response


class Passage(BaseModel):
    start: int = Field(ge=0)
    end: int = Field(ge=1)


class ExemplarCreate(BaseModel):
    kind: ExemplarKind
    source: str | None = Field(
        default=None, max_length=64, description="Public id of the post, paper or review"
    )
    passage: Passage | None = Field(default=None, description="For kind=passage")
    question_id: int | None = Field(default=None, description="Omit for the whole assignment")
    note: str = Field(default="", max_length=5000, description="Why it is exemplary (markdown)")
    position: int | None = Field(default=None, ge=0, le=100_000)
    status: ExemplarStatus = ExemplarStatus.draft


class ExemplarUpdate(BaseModel):
    version: int = Field(description="The version you edited (409 when stale)")
    note: str | None = Field(default=None, max_length=5000)
    position: int | None = Field(default=None, ge=0, le=100_000)
    status: ExemplarStatus | None = None
    question_id: int | None = None
    whole_assignment: bool = Field(default=False, description="Move it to the whole assignment")


class ConsentChoice(BaseModel):
    choice: Literal["anonymous", "named", "declined"]


def _whole_number(raw: str) -> int | None:
    # ASCII digits only ("²".isdigit() is true, int("²") is not), and small enough for a
    # database integer.
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


def _question_filter(request: Request) -> tuple[int | None, bool]:
    raw = request.query_params.get("question")
    if raw is None:
        return None, False
    if raw == "none":
        return None, True
    question_id = _whole_number(raw)
    if question_id is None:
        raise ApiError(400, "question must be a question id or 'none'.")
    return question_id, False


async def list_exemplars(request: Request) -> Response:
    question_id, whole = _question_filter(request)
    async with unit_of_work(request) as (session, actor):
        views = await exemplars.gallery(
            session, actor=actor, assignment_id=request.path_params["assignment"],
            question_id=question_id, whole_assignment=whole,
        )  # fmt: skip
    return json_response(views)


async def create_exemplar(request: Request) -> Response:
    data = await read_model(request, ExemplarCreate)
    async with unit_of_work(request) as (session, actor):
        made = await exemplars.nominate(
            session,
            actor=actor,
            assignment_id=request.path_params["assignment"],
            kind=data.kind,
            source=data.source,
            passage=(data.passage.start, data.passage.end) if data.passage else None,
            question_id=data.question_id,
            note=data.note,
            position=data.position,
            publish=data.status is ExemplarStatus.published,
        )
        view = await exemplars.get(session, actor=actor, public_id=made.public_id)
    location = request.url_for("api:exemplars:detail", exemplar=view.id).path
    return json_response(view, status_code=201, headers={"Location": location})


async def exemplar_detail(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        view = await exemplars.get(session, actor=actor, public_id=request.path_params["exemplar"])
    return json_response(view)


async def update_exemplar(request: Request) -> Response:
    data = await read_model(request, ExemplarUpdate)
    async with unit_of_work(request) as (session, actor):
        made = await exemplars.update(
            session,
            actor=actor,
            public_id=request.path_params["exemplar"],
            version=data.version,
            note=data.note,
            position=data.position,
            status=data.status,
            question_id=data.question_id,
            clear_question=data.whole_assignment,
        )
        view = await exemplars.get(session, actor=actor, public_id=made.public_id)
    return json_response(view)


async def refresh_exemplar(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        made = await exemplars.refresh(
            session, actor=actor, public_id=request.path_params["exemplar"]
        )
        view = await exemplars.get(session, actor=actor, public_id=made.public_id)
    return json_response(view)


async def delete_exemplar(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        await exemplars.remove(session, actor=actor, public_id=request.path_params["exemplar"])
    return Response(status_code=204)


async def choose_attribution(request: Request) -> Response:
    data = await read_model(request, ConsentChoice)
    async with unit_of_work(request) as (session, actor):
        made = await exemplars.choose_attribution(
            session, actor=actor, public_id=request.path_params["exemplar"],
            choice=Attribution(data.choice),
        )  # fmt: skip
        view = await exemplars.get(session, actor=actor, public_id=made.public_id)
    return json_response(view)


# --- pages ---------------------------------------------------------------------------------


def _groups(
    views: list[ExemplarView], assignment: AssignmentView, *, filtered: bool
) -> list[tuple[str, list[ExemplarView]]]:
    """The page's lists: one unlabelled list for one gallery; for "All", each gallery under
    its own heading (whole assignment first, then the questions in order), each in curator
    order, so that Move up/down visibly moves within its own gallery."""
    if filtered:
        return [("", views)] if views else []
    out = []
    for question_id, label in [(None, "The whole assignment")] + [
        (q.id, f"Question {q.position}") for q in assignment.questions
    ]:
        items = [e for e in views if e.question_id == question_id]
        if items:
            out.append((label, items))
    return out


async def gallery_page(request: Request) -> Response:
    assignment_id = request.path_params["assignment"]
    question_id, whole = _question_filter(request)
    async with page_unit(request) as (session, caller):
        if caller.user is None:
            return signin_redirect(request)
        detail = await assignments.get_assignment(
            session, actor=caller.actor, assignment_id=assignment_id
        )
        views = await exemplars.gallery(
            session, actor=caller.actor, assignment_id=assignment_id,
            question_id=question_id, whole_assignment=whole,
        )  # fmt: skip
        controls = await exemplars.curation_controls(
            session, actor=caller.actor, assignment_id=assignment_id
        )
        view = assignments.present_assignment(detail, actor=caller.actor)
    question = next((q for q in view.questions if q.id == question_id), None)
    return render_page(
        request,
        "exemplars.html",
        {
            "assignment": view,
            "cohort": detail.cohort,
            "groups": _groups(views, view, filtered=whole or question_id is not None),
            "question": question,
            "whole": whole,
            "controls": controls,  # empty unless the viewer curates
            # Sent back by the curation forms, to return to this same gallery.
            "shown": "none" if whole else (str(question_id) if question_id is not None else ""),
        },
    )


async def attribution_form(request: Request) -> Response:
    form = await request.form()
    choice = form.get("choice")
    if choice not in ("anonymous", "named", "declined"):
        raise ApiError(422, "Choose anonymous, named or declined.")
    async with page_unit(request, form) as (session, caller):
        made = await exemplars.choose_attribution(
            session, actor=caller.actor, public_id=request.path_params["exemplar"],
            choice=Attribution(str(choice)),
        )  # fmt: skip
    target = request.app.url_path_for("exemplars:gallery", assignment=str(made.assignment_id))
    messages = {
        Attribution.anonymous: "Shown as a classmate's, without your name.",
        Attribution.named: "Shown with your name.",
        Attribution.declined: "It will not be shown.",
    }
    return redirect_with_flash(request, str(target), messages[made.attribution])


async def nominate_form(request: Request) -> Response:
    """The thread page's "Nominate as exemplar" form (moderators)."""
    form = await request.form()

    def field(name: str) -> str:
        return form_field(form, name, strip=True)

    try:
        kind = ExemplarKind(field("kind") or "post")
    except ValueError:
        raise ApiError(422, "Unknown kind of exemplar.") from None
    question_id = _whole_number(field("question_id"))
    async with page_unit(request, form) as (session, caller):
        if question_id is None:
            raise ApiError(422, "Choose the question this exemplar is for.")
        question = await session.get(Question, question_id)
        if question is None:
            raise ApiError(404, "No such question.")
        made = await exemplars.nominate(
            session, actor=caller.actor, assignment_id=question.assignment_id, kind=kind,
            source=field("source") or None, question_id=question_id, note=field("note"),
            publish=field("publish") == "1",
        )  # fmt: skip
    target = request.app.url_path_for("exemplars:gallery", assignment=str(made.assignment_id))
    return redirect_with_flash(
        request,
        f"{target}?question={question_id}",
        "Nominated. The author has been told, and chooses how it is shown.",
    )


def _version_field(form: FormData) -> int:
    version = _whole_number(form_field(form, "version", strip=True))
    if version is None:
        raise ApiError(422, "This form is missing the exemplar's version; reload the gallery.")
    return version


def _back_to_gallery(request: Request, form: FormData, assignment_id: int, anchor: str) -> str:
    """The gallery the form was on (all, the whole assignment's, or one question's), at the
    exemplar; the `gallery` field only ever picks one of those, never an arbitrary URL."""
    path = str(request.app.url_path_for("exemplars:gallery", assignment=str(assignment_id)))
    shown = form_field(form, "gallery", strip=True)
    if shown == "none" or _whole_number(shown) is not None:
        path += f"?question={shown}"
    return f"{path}#exemplar-{anchor}"


async def move_form(request: Request) -> Response:
    """The gallery's "Move up" / "Move down" buttons (curators)."""
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        # The service refuses all but up / down.
        direction = form_field(form, "direction", strip=True)
        made = await exemplars.move(
            session, actor=caller.actor, public_id=request.path_params["exemplar"],
            direction=direction, version=_version_field(form),
            neighbour=form_field(form, "neighbour", strip=True) or None,
        )  # fmt: skip
    return redirect_with_flash(
        request,
        _back_to_gallery(request, form, made.assignment_id, made.public_id),
        f"Moved “{made.title}” {direction}.",
    )


async def edit_form(request: Request) -> Response:
    """The gallery's publish / back-to-draft button and note editor (curators)."""
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        raw_status = form_field(form, "status", strip=True)
        try:
            status = ExemplarStatus(raw_status) if raw_status else None
        except ValueError:
            raise ApiError(422, "An exemplar is either draft or published.") from None
        note = form.get("note")
        if status is None and not isinstance(note, str):
            raise ApiError(422, "Nothing to change: send a note or a status.")
        made = await exemplars.update(
            session, actor=caller.actor, public_id=request.path_params["exemplar"],
            version=_version_field(form), status=status,
            note=note if isinstance(note, str) else None,
        )  # fmt: skip
    if status is ExemplarStatus.published:
        message = f"“{made.title}” is published: classmates see it unless the author declines."
    elif status is ExemplarStatus.draft:
        message = f"“{made.title}” is back to draft: only curators and the author see it."
    else:
        message = "The note was saved."
    return redirect_with_flash(
        request, _back_to_gallery(request, form, made.assignment_id, made.public_id), message
    )
