"""Authoring pages and API: upload an assignment document, check and edit what was read,
create the assignment; edit and reorder its questions (while a draft) and its stance rubric
(until reviews exist); copy it to another cohort.

Nothing is stored until the instructor presses "Create assignment": the parsed fields travel
in the form itself. Moving, adding and removing rows re-render the same form (200) with the
person's input; a refusal re-renders it (422, or 409 when the assignment changed or is
locked) with the reason next to the field, keeping the CSRF token (`page_unit(request,
form)` renders it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, Field
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from services import assignments, authoring, cohorts, importing
from services.errors import Conflict, Invalid, NotFound, Problem
from services.importing import AssignmentDraft, QuestionDraft
from services.models import ComponentStance, Stance
from web.context import unit_of_work
from web.endpoints import lti_deep_linking
from web.endpoints.pages import page_unit, redirect_with_flash, render_page, require_signed_in
from web.endpoints.parsing import read_model
from web.responses import json_response

ACCEPT = ".txt,.md,.markdown,.docx,.json,.toml"
MAX_DOCUMENT_BYTES = 900 * 1024  # under the request body limit, with room for the envelope
MAX_ROWS = 60  # questions or components one form may carry

STANCE_SCALE = [
    (Stance.strongly_disagrees, "1 · strongly disagrees"),
    (Stance.mostly_disagrees, "2 · mostly disagrees"),
    (Stance.mixed, "3 · mixed"),
    (Stance.mostly_agrees, "4 · mostly agrees"),
    (Stance.strongly_agrees, "5 · strongly agrees"),
    (Stance.does_not_engage, "outside the scale · does not engage with the source"),
]
COMPONENT_SCALE = [
    (ComponentStance.agrees, "agrees"),
    (ComponentStance.disagrees, "disagrees"),
    (ComponentStance.mixed, "mixed"),
    (ComponentStance.not_addressed, "not addressed"),
]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [v if isinstance(v, str) else "" for v in form.getlist(name)][:MAX_ROWS]


def _errors(problems: list[Problem]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in problems:
        errors.setdefault(problem.field or "", problem.message)
    return errors


def _int_or_none(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isdigit() and len(raw) < 6 else None


# --- the rubric rows, shared by the new-assignment form and the rubric page ----------------


def _rubric_from(form: FormData) -> authoring.RubricInput:
    keys = _texts(form, "component_key")
    labels = _texts(form, "component_label")
    descriptions = _texts(form, "component_description")
    questions = _texts(form, "component_question")
    rows = []
    for index, label in enumerate(labels):
        description = descriptions[index] if index < len(descriptions) else ""
        question = _int_or_none(questions[index]) if index < len(questions) else None
        key = (keys[index] if index < len(keys) else "").strip() or None
        rows.append(authoring.ComponentInput(label, description, question, key))
    choice = _text(form, "stance_source")
    return authoring.RubricInput(
        source_reference=_int_or_none(choice),
        components=tuple(rows),
        keep_source=_text(form, "keep_source") or None if choice == "keep" else None,
    )


def _without_empty_rows(rubric: authoring.RubricInput) -> authoring.RubricInput:
    """Rows left without a label and a description are removed (the form says so)."""
    rows = tuple(c for c in rubric.components if c.label.strip() or c.description.strip())
    return authoring.RubricInput(rubric.source_reference, rows, rubric.keep_source)


def _move(items: list[Any], action: str, prefix: str) -> tuple[list[Any], str | None]:
    """Apply "<prefix>-up:<i>" / "<prefix>-down:<i>" to `items`; the id to focus after."""
    verb, _, raw = action.partition(":")
    index = _int_or_none(raw)
    if index is None or not 0 <= index < len(items):
        return items, None
    target = index - 1 if verb == f"{prefix}-up" else index + 1
    if verb not in (f"{prefix}-up", f"{prefix}-down") or not 0 <= target < len(items):
        return items, None
    items = list(items)
    items[index], items[target] = items[target], items[index]
    return items, f"{prefix}-{target + 1}"


def _rubric_action(
    rubric: authoring.RubricInput, action: str
) -> tuple[authoring.RubricInput, str | None]:
    rows = list(rubric.components)
    focus: str | None = None
    if action == "c-add":
        rows.append(authoring.ComponentInput(""))
        focus = f"component_label-{len(rows)}"
    elif action.startswith("c-remove:"):
        index = _int_or_none(action.partition(":")[2])
        if index is not None and 0 <= index < len(rows):
            del rows[index]
            focus = "c-add"
    else:
        rows, focus = _move(rows, action, "c")
    return authoring.RubricInput(rubric.source_reference, tuple(rows), rubric.keep_source), focus


def _rubric_context(
    rubric: authoring.RubricInput,
    *,
    references: list[str],
    questions: list[str],
) -> dict[str, Any]:
    choices = []
    for position, prompt in enumerate(questions, start=1):
        text = " ".join(prompt.split())
        choices.append((position, text[:70] + ("…" if len(text) > 70 else "")))
    return {
        "rubric": rubric,
        "references": [
            (i, ref, importing.short_citation(ref)) for i, ref in enumerate(references, start=1)
        ],
        "question_choices": choices,
        "stance_scale": STANCE_SCALE,
        "component_scale": COMPONENT_SCALE,
    }


# --- new assignment: upload, check, edit, create -------------------------------------------


@dataclass
class NewForm:
    """The new-assignment form as the person has it (from the parse, or as they edited it)."""

    title: str = ""
    instructions: str = ""
    questions: list[str] = field(default_factory=list)
    sample_paper: str = ""
    references: str = ""
    reviews_per_paper: str = "3"
    allow_anonymous_posts: bool = True
    rubric: authoring.RubricInput = field(
        default_factory=lambda: authoring.RubricInput(source_reference=None)
    )
    filename: str = ""

    @classmethod
    def of(cls, draft: AssignmentDraft, filename: str) -> NewForm:
        return cls(
            title=draft.title,
            instructions=draft.instructions,
            questions=[q.prompt for q in draft.questions],
            sample_paper=draft.sample_paper or "",
            references="\n".join(draft.references),
            reviews_per_paper=str(draft.reviews_per_paper),
            allow_anonymous_posts=draft.allow_anonymous_posts,
            rubric=authoring.rubric_input_of(draft),
            filename=filename,
        )

    @classmethod
    def read(cls, form: FormData) -> NewForm:
        return cls(
            title=_text(form, "title"),
            instructions=_text(form, "instructions"),
            questions=_texts(form, "question"),
            sample_paper=_text(form, "sample_paper"),
            references=_text(form, "references"),
            reviews_per_paper=_text(form, "reviews_per_paper"),
            allow_anonymous_posts=form.get("allow_anonymous_posts") == "on",
            rubric=_rubric_from(form),
            filename=_text(form, "filename"),
        )

    @property
    def reference_list(self) -> list[str]:
        return [line.strip() for line in self.references.splitlines() if line.strip()]

    def draft(self) -> AssignmentDraft:
        try:
            reviews = int(self.reviews_per_paper.strip())
        except ValueError:
            raise Invalid(
                problems=[Problem("must be a whole number", field="reviews_per_paper")]
            ) from None
        return AssignmentDraft(
            title=self.title,
            instructions=self.instructions,
            questions=tuple(QuestionDraft(q) for q in self.questions),
            sample_paper=self.sample_paper,
            references=tuple(self.reference_list),
            reviews_per_paper=reviews,
            allow_anonymous_posts=self.allow_anonymous_posts,
        )


def _deep_link(request: Request) -> str | None:
    """The LTI deep linking request (in this session) that the new assignment is made for,
    named by the pages' `?deep_link=` (see web/endpoints/lti_deep_linking.py)."""
    wanted = request.query_params.get("deep_link", "")
    try:
        return lti_deep_linking.pending_of(request, wanted).id if wanted else None
    except NotFound:
        return None


def _return_query(request: Request) -> str:
    deep_link = _deep_link(request)
    return f"?{urlencode({'deep_link': deep_link})}" if deep_link else ""


async def _cohort_view(request: Request, form: FormData | None) -> Any:
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        cohort = await cohorts.get_cohort(
            session, actor=caller.actor, slug=request.path_params["cohort"]
        )
        view = cohorts.present_cohort(cohort, actor=caller.actor)
        if not view.can_manage:
            raise NotFound("No such cohort.")
    return view


async def _render_upload(
    request: Request,
    *,
    form: FormData | None = None,
    parsed: authoring.Parsed | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    cohort = await _cohort_view(request, form)
    if isinstance(cohort, Response):
        return cohort
    lines = parsed.source.split("\n") if parsed is not None else []
    by_line: dict[int, list[str]] = {}
    for problem in parsed.problems if parsed is not None else ():
        by_line.setdefault(problem.line or 0, []).append(problem.message)
    return render_page(
        request,
        "authoring_upload.html",
        {"cohort": cohort, "parsed": parsed, "lines": lines, "by_line": by_line,
         "return_query": _return_query(request),
         "errors": errors or {}, "accept": ACCEPT,
         "max_kb": MAX_DOCUMENT_BYTES // 1024, "kinds": authoring.UPLOAD_KINDS},
        status=status,
    )  # fmt: skip


async def _render_new(
    request: Request,
    new: NewForm,
    *,
    form: FormData | None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    focus: str | None = None,
    status: int = 200,
) -> Response:
    cohort = await _cohort_view(request, form)
    if isinstance(cohort, Response):
        return cohort
    return render_page(
        request,
        "authoring_new.html",
        {"cohort": cohort, "new": new, "errors": errors or {}, "message": message,
         "focus": focus, "return_query": _return_query(request),
         **_rubric_context(new.rubric, references=new.reference_list, questions=new.questions)},
        status=status,
    )  # fmt: skip


async def new_page(request: Request) -> Response:
    return await _render_upload(request)


async def read_form(request: Request) -> Response:
    """An uploaded file, or the document's text fixed on the page: its parse, or the
    problems found, each at its line."""
    async with request.form(max_files=1, max_fields=8, max_part_size=MAX_DOCUMENT_BYTES) as form:
        upload = form.get("file")
        filename = ""
        try:
            if isinstance(upload, UploadFile) and upload.filename:
                filename = upload.filename
                data = await upload.read(MAX_DOCUMENT_BYTES + 1)
                if len(data) > MAX_DOCUMENT_BYTES:
                    raise Invalid(
                        problems=[
                            Problem(f"is larger than {MAX_DOCUMENT_BYTES // 1024} KB", field="file")
                        ]
                    )
                # Permission first: a stranger learns nothing from how a file reads.
                if isinstance(cohort := await _cohort_view(request, form), Response):
                    return cohort
                parsed = await authoring.read_document(data, filename=filename)
            elif source := _text(form, "source"):
                filename = _text(form, "filename")
                if isinstance(cohort := await _cohort_view(request, form), Response):
                    return cohort
                parsed = authoring.parse_source(source, _text(form, "kind"))
            else:
                raise Invalid(problems=[Problem("choose the assignment document", field="file")])
        except Invalid as error:
            problems = error.problems or [Problem(str(error), field="file")]
            return await _render_upload(request, form=form, errors=_errors(problems), status=422)
        if parsed.draft is None:
            return await _render_upload(request, form=form, parsed=parsed, status=422)
        return await _render_new(request, NewForm.of(parsed.draft, filename), form=form)


async def create_form(request: Request) -> Response:
    form = await request.form()
    new = NewForm.read(form)
    action = _text(form, "action")
    if action != "create":
        focus: str | None = None
        if action == "q-add":
            new.questions.append("")
            focus = f"question-{len(new.questions)}"
        elif action.startswith("q-"):
            new.questions, focus = _move(new.questions, action, "q")
        else:
            new.rubric, focus = _rubric_action(new.rubric, action)
        return await _render_new(request, new, form=form, focus=focus)
    slug = request.path_params["cohort"]
    try:
        async with page_unit(request, form) as (session, caller):
            if (redirect := require_signed_in(request, caller)) is not None:
                return redirect
            cohort = await cohorts.get_cohort(session, actor=caller.actor, slug=slug)
            made = await authoring.create_assignment(
                session, actor=caller.actor, cohort=cohort, draft=new.draft(),
                rubric=_without_empty_rows(new.rubric),
            )  # fmt: skip
            assert made.id is not None
    except Invalid as error:
        return await _render_new(
            request, new, form=form, errors=_errors(error.problems), status=422,
            message=None if error.problems else str(error),
        )  # fmt: skip
    if (deep_link := _deep_link(request)) is not None:
        # Made from the LMS's "add an activity" flow: back to its picker, this one chosen.
        picker = request.app.url_path_for("lti:deep_link", request=deep_link)
        return redirect_with_flash(
            request,
            f"{picker}?made={made.id}",
            "The assignment is created as a draft (students do not see it yet). Add it to the "
            "course below; check its rubric and open it from Peerboard before students start.",
        )
    path = request.app.url_path_for("authoring:rubric", assignment=str(made.id))
    return redirect_with_flash(
        request,
        str(path),
        "The assignment is created as a draft (students do not see it yet). Check its rubric, "
        "then open it from the assignment page.",
    )


# --- an existing assignment: questions, rubric, copy ---------------------------------------


async def _editor(request: Request, form: FormData | None) -> Any:
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        actor = caller.actor
        detail = await assignments.get_assignment(
            session, actor=actor, assignment_id=request.path_params["assignment"]
        )
        view = assignments.present_assignment(detail, actor=actor)
        if not view.can_manage:
            raise NotFound("No such assignment.")
        return {
            "assignment": view,
            "cohort": cohorts.present_cohort(detail.cohort, actor=actor),
            "questions_locked": authoring.questions_locked_reason(detail.assignment),
            "rubric_locked": await authoring.rubric_locked_reason(session, assignment_id=view.id),
            "targets": [
                (c.slug, c.name)
                for c in await authoring.copy_targets(
                    session, actor=actor, assignment=detail.assignment
                )
            ],
            "question_ids": [q.id for q in view.questions],
        }


@dataclass
class QuestionRow:
    id: str  # "" for a new question
    prompt: str


async def _render_questions(
    request: Request,
    *,
    rows: list[QuestionRow] | None = None,
    form: FormData | None = None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    focus: str | None = None,
    status: int = 200,
) -> Response:
    context = await _editor(request, form)
    if isinstance(context, Response):
        return context
    view = context["assignment"]
    if rows is None:
        rows = [QuestionRow(str(q.id), q.prompt) for q in view.questions]
    return render_page(
        request,
        "authoring_questions.html",
        {**context, "rows": rows, "errors": errors or {}, "message": message, "focus": focus},
        status=status,
    )


async def questions_page(request: Request) -> Response:
    return await _render_questions(request)


async def questions_form(request: Request) -> Response:
    form = await request.form()
    ids, prompts = _texts(form, "question_id"), _texts(form, "question")
    rows = [QuestionRow(ids[i] if i < len(ids) else "", p) for i, p in enumerate(prompts)]
    action = _text(form, "action")
    if action != "save":
        focus: str | None = None
        if action == "q-add":
            rows.append(QuestionRow("", ""))
            focus = f"question-{len(rows)}"
        else:
            rows, focus = _move(rows, action, "q")
        return await _render_questions(request, rows=rows, form=form, focus=focus)
    assignment_id = request.path_params["assignment"]
    try:
        version = int(_text(form, "version"))
        edits = [authoring.QuestionInput(_int_or_none(r.id), r.prompt) for r in rows]
        async with page_unit(request, form) as (session, caller):
            if (redirect := require_signed_in(request, caller)) is not None:
                return redirect
            await authoring.update_questions(
                session, actor=caller.actor, assignment_id=assignment_id, version=version,
                questions=edits,
            )  # fmt: skip
    except (ValueError, Invalid, Conflict) as error:
        return await _render_questions(
            request, rows=rows, form=form, **_refused(error, kept="Your text is", of="questions")
        )
    path = request.app.url_path_for("assignments:detail", assignment=str(assignment_id))
    return redirect_with_flash(request, str(path), "The questions are saved.")


def _refused(error: Exception, *, kept: str, of: str) -> dict[str, Any]:
    """How the questions or rubric page answers a refused save, the person's input kept: a
    field error (422), a stale or locked assignment (409), or a form without its version."""
    if isinstance(error, Invalid):
        return {"errors": _errors(error.problems), "status": 422}
    if isinstance(error, Conflict):
        return {
            "status": 409,
            "message": f"{error} {kept} still below; reload the page to start again from "
            f"the current {of}.",
        }
    return {"status": 422, "message": "The form is missing its version; reload the page."}


async def _render_rubric(
    request: Request,
    *,
    rubric: authoring.RubricInput | None = None,
    form: FormData | None = None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    focus: str | None = None,
    status: int = 200,
) -> Response:
    context = await _editor(request, form)
    if isinstance(context, Response):
        return context
    view = context["assignment"]
    if rubric is None:
        position = authoring.source_reference_of(view.rubric.source, view.references)
        rubric = authoring.RubricInput(
            source_reference=position,
            keep_source=view.rubric.source if position is None else None,
            components=tuple(
                authoring.ComponentInput(c.label, c.description, c.question, c.key)
                for c in view.rubric.components
            ),
        )
        if position is None and not view.rubric.source and view.references:
            # Nothing chosen yet: propose the first reference, as the import would.
            rubric = authoring.RubricInput(1, rubric.components)
    return render_page(
        request,
        "authoring_rubric.html",
        {**context, "errors": errors or {}, "message": message, "focus": focus,
         **_rubric_context(rubric, references=view.references,
                           questions=[q.prompt for q in view.questions])},
        status=status,
    )  # fmt: skip


async def rubric_page(request: Request) -> Response:
    return await _render_rubric(request)


async def rubric_form(request: Request) -> Response:
    form = await request.form()
    rubric = _rubric_from(form)
    action = _text(form, "action")
    if action != "save":
        rubric, focus = _rubric_action(rubric, action)
        return await _render_rubric(request, rubric=rubric, form=form, focus=focus)
    assignment_id = request.path_params["assignment"]
    try:
        version = int(_text(form, "version"))
        async with page_unit(request, form) as (session, caller):
            if (redirect := require_signed_in(request, caller)) is not None:
                return redirect
            await authoring.update_rubric(
                session, actor=caller.actor, assignment_id=assignment_id, version=version,
                rubric=_without_empty_rows(rubric),
            )  # fmt: skip
    except (ValueError, Invalid, Conflict) as error:
        return await _render_rubric(
            request, rubric=rubric, form=form, **_refused(error, kept="Your edits are", of="rubric")
        )
    path = request.app.url_path_for("assignments:detail", assignment=str(assignment_id))
    return redirect_with_flash(request, str(path), "The rubric is saved.")


async def copy_form(request: Request) -> Response:
    form = await request.form()
    # The assignment first: someone who may not edit it learns nothing about cohorts.
    if isinstance(context := await _editor(request, form), Response):
        return context
    try:
        async with page_unit(request, form) as (session, caller):
            copy = await authoring.copy_assignment(
                session, actor=caller.actor, assignment_id=request.path_params["assignment"],
                cohort_slug=_text(form, "cohort"),
            )  # fmt: skip
            assert copy.id is not None
    except Invalid as error:
        return await _render_questions(
            request, form=form, errors=_errors(error.problems), status=422
        )
    except NotFound:
        problem = "pick one of the cohorts you teach" if _text(form, "cohort") else "pick a cohort"
        return await _render_questions(request, form=form, errors={"cohort": problem}, status=422)
    path = request.app.url_path_for("authoring:questions", assignment=str(copy.id))
    return redirect_with_flash(
        request,
        str(path),
        "The copy is ready as a draft in the other cohort, without deadlines: check its "
        "questions and rubric, and set its deadlines.",
    )


# --- JSON API ------------------------------------------------------------------------------


class QuestionEdit(BaseModel):
    id: int | None = Field(default=None, description="An existing question's id; omit for new")
    prompt: str = Field(max_length=20_000, description="Markdown; empty removes the question")


class QuestionsWrite(BaseModel):
    version: int = Field(description="The version you edited (409 when stale)")
    questions: list[QuestionEdit] = Field(max_length=MAX_ROWS, description="In their new order")


class ComponentEdit(BaseModel):
    key: str | None = Field(default=None, max_length=64, description="Keep an existing one")
    label: str = Field(max_length=400)
    description: str = Field(default="", max_length=4_000)
    question: int | None = Field(default=None, description="The question's position, from 1")


class RubricWrite(BaseModel):
    version: int = Field(description="The version you edited (409 when stale)")
    source_reference: int | None = Field(
        description="The position (from 1) of the reference that is the stance source"
    )
    components: list[ComponentEdit] = Field(default_factory=list, max_length=MAX_ROWS)


class CopyRequest(BaseModel):
    cohort: str = Field(max_length=64, description="The slug of a cohort you manage")


async def _assignment_view(request: Request, assignment_id: int) -> Any:
    async with unit_of_work(request) as (session, actor):
        detail = await assignments.get_assignment(session, actor=actor, assignment_id=assignment_id)
        return await assignments.assignment_view(session, actor=actor, detail=detail)


async def api_questions(request: Request) -> Response:
    data = await read_model(request, QuestionsWrite)
    assignment_id = request.path_params["assignment"]
    async with unit_of_work(request) as (session, actor):
        await authoring.update_questions(
            session, actor=actor, assignment_id=assignment_id, version=data.version,
            questions=[authoring.QuestionInput(q.id, q.prompt) for q in data.questions],
        )  # fmt: skip
    return json_response(await _assignment_view(request, assignment_id))


async def api_rubric(request: Request) -> Response:
    data = await read_model(request, RubricWrite)
    assignment_id = request.path_params["assignment"]
    rubric = authoring.RubricInput(
        source_reference=data.source_reference,
        components=tuple(
            authoring.ComponentInput(c.label, c.description, c.question, c.key)
            for c in data.components
        ),
    )
    async with unit_of_work(request) as (session, actor):
        await authoring.update_rubric(
            session, actor=actor, assignment_id=assignment_id, version=data.version, rubric=rubric
        )
    return json_response(await _assignment_view(request, assignment_id))


async def api_copy(request: Request) -> Response:
    data = await read_model(request, CopyRequest)
    async with unit_of_work(request) as (session, actor):
        copy = await authoring.copy_assignment(
            session, actor=actor, assignment_id=request.path_params["assignment"],
            cohort_slug=data.cohort,
        )  # fmt: skip
        assert copy.id is not None
        detail = await assignments.get_assignment(session, actor=actor, assignment_id=copy.id)
        view = await assignments.assignment_view(session, actor=actor, detail=detail)
    location = request.url_for("api:assignments:detail", assignment=str(view.id)).path
    return json_response(view, status_code=201, headers={"Location": location})
