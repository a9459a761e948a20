"""Turn an uploaded assignment document into an :class:`AssignmentDraft`.

Framework-free: stdlib + pydantic only, no web or database code. Parsing is all-or-nothing:
any problem raises :class:`~services.errors.ImportRejected` carrying every problem found,
each saying where (a line number for text, a field path for JSON/TOML) and why.

Two input formats are understood:

* **Plain text** (see ``parse_assignment_text``): a title block of short heading lines, one
  question per paragraph, an optional ``Paper For Above instruction`` line followed by a
  sample paper, and an optional ``References`` heading followed by one citation per line.
* **Structured** JSON or TOML (see ``parse_assignment_structured``) following the schema of
  ``AssignmentSpec``.

``parse_assignment_document`` decodes uploaded bytes and picks the format.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
)

from services.errors import ImportRejected, Problem

__all__ = [
    "MAX_DOCUMENT_CHARS",
    "MAX_QUESTIONS",
    "MAX_QUESTION_CHARS",
    "MAX_REFERENCES",
    "MAX_RUBRIC_COMPONENTS",
    "MAX_TITLE_CHARS",
    "AssignmentDraft",
    "QuestionDraft",
    "RubricComponentDraft",
    "citation_authors",
    "parse_assignment_document",
    "parse_assignment_structured",
    "parse_assignment_text",
    "propose_rubric",
    "short_citation",
    "slugify",
    "unique_key",
]

MAX_DOCUMENT_CHARS = 200_000
MAX_QUESTIONS = 50
MAX_TITLE_CHARS = 200
MAX_QUESTION_CHARS = 10_000
MAX_REFERENCES = 200
MAX_RUBRIC_COMPONENTS = 20

# Not part of the brief's limits, but keeps every structured string bounded.
_MAX_LABEL_CHARS = 200
_MAX_KEY_CHARS = 64
_MAX_SOURCE_CHARS = 300
_MAX_DESCRIPTION_CHARS = 2_000
_MAX_REFERENCE_CHARS = 2_000
_MAX_REPORTED_PROBLEMS = 20


# --------------------------------------------------------------------------------------
# Drafts (the public result)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RubricComponentDraft:
    key: str  # slug, [a-z0-9-], unique within the rubric; derived from label if absent
    label: str
    description: str = ""
    question: int | None = None  # 1-based number of the question it comes from, if any


@dataclass(frozen=True)
class QuestionDraft:
    prompt: str  # markdown source; bullet lines become markdown list items ("- item")


@dataclass(frozen=True)
class AssignmentDraft:
    title: str
    instructions: str  # markdown; "" when the document has none
    questions: tuple[QuestionDraft, ...]  # at least 1
    sample_paper: str | None  # markdown paragraphs joined by blank lines, or None
    references: tuple[str, ...]  # one citation per entry, bullets stripped
    stance_source: str | None = None  # e.g. "Mikulincer & Shaver (2019)"
    rubric: tuple[RubricComponentDraft, ...] = ()
    reviews_per_paper: int = 3
    allow_anonymous_posts: bool = True


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


def _reject(problems: Sequence[Problem]) -> ImportRejected:
    problems = list(problems)
    if len(problems) > _MAX_REPORTED_PROBLEMS:
        hidden = len(problems) - _MAX_REPORTED_PROBLEMS
        more = Problem(message=f"... and {hidden} more problem(s) of the same kinds")
        problems = [*problems[:_MAX_REPORTED_PROBLEMS], more]
    return ImportRejected(problems=problems)


def _char_name(ch: str) -> str:
    names = {"\x00": "NUL", "\x0b": "vertical tab", "\x0c": "form feed", "\x1b": "escape"}
    return f"U+{ord(ch):04X}" + (f" {names[ch]}" if ch in names else "")


def _first_control_char(text: str) -> tuple[int, str] | None:
    """(0-based index, char) of the first C0 control character other than tab/newline/CR."""
    for index, ch in enumerate(text):
        if ch < " " and ch not in "\t\n\r":
            return index, ch
    return None


def _line_at(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _size_problem(text: str) -> Problem:
    return Problem(
        message=(
            f"the document is {len(text):,} characters long; the limit is "
            f"{MAX_DOCUMENT_CHARS:,} (the limit is passed on this line)"
        ),
        line=_line_at(text, MAX_DOCUMENT_CHARS),
    )


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


_SLUG_RUN = re.compile(r"[^a-z0-9]+")


def _slugify(label: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode("ascii")
    slug = _SLUG_RUN.sub("-", ascii_text.lower()).strip("-")
    return slug[:_MAX_KEY_CHARS].rstrip("-")


# --------------------------------------------------------------------------------------
# Plain-text format
# --------------------------------------------------------------------------------------

_BULLET = re.compile(
    r"""^\s*(?:
        [-*+\u2013\u2014](?:\s+|$)   # -, *, +, en/em dash: need a space after them
      | [•◦▪‣·]\s*                  # typographic bullets may be glued to the text
      | \d{1,3}[.)](?:\s+|$)         # 1.  1)
      | [A-Za-z][)](?:\s+|$)         # a)  B)
      | \((?:\d{1,3}|[A-Za-z])\)\s*  # (1)  (a)
    )""",
    re.VERBOSE,
)
_REFERENCE_NUMBER = re.compile(r"^\s*\[\d{1,3}\]\s*")
_MD_HEADING = re.compile(r"^#{1,6}\s+")
_PAPER_MARKER = re.compile(
    r"^(?:#{1,6}\s*)?paper\s+for\s+(?:the\s+)?above\s+instructions?\s*:?$", re.IGNORECASE
)
_REFERENCES_MARKER = re.compile(
    r"^(?:#{1,6}\s*)?(?:references?|bibliography|works\s+cited)\s*:?$", re.IGNORECASE
)
_SENTENCE_END = ".?!\u2026\u3002\uff1f\uff01"  # also ellipsis and CJK . ? !
_CLOSERS = "\"'\u201d\u2019\u00bb)]}*_"  # closing quotes, brackets, emphasis
_NEAR_DUPLICATE_RATIO = 0.8


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based
    raw: str  # trailing whitespace removed, leading whitespace kept

    @property
    def text(self) -> str:
        return self.raw.strip()

    @property
    def blank(self) -> bool:
        return not self.text

    @property
    def indented(self) -> bool:
        return self.raw[:1].isspace()


@dataclass
class _Paragraph:
    lines: list[_Line]

    @property
    def first(self) -> int:
        return self.lines[0].number

    @property
    def last(self) -> int:
        return self.lines[-1].number


def _bullet_item(line: _Line) -> str | None:
    """The item text if ``line`` is a bullet or numbered line, else None."""
    match = _BULLET.match(line.raw)
    return line.raw[match.end() :].strip() if match else None


def _is_heading(line: _Line) -> bool:
    text = line.text
    return (
        bool(text)
        and len(text) <= MAX_TITLE_CHARS
        and not _ends_sentence(text)
        and not text.endswith(":")  # introduces what follows, like "Consider the following:"
        and _bullet_item(line) is None
        and not _PAPER_MARKER.match(text)
        and not _REFERENCES_MARKER.match(text)
        and any(ch.isalnum() for ch in text)
    )


def _ends_sentence(text: str) -> bool:
    trimmed = text.rstrip(_CLOSERS).rstrip()
    return bool(trimmed) and trimmed[-1] in _SENTENCE_END


def _heading_text(line: _Line) -> str:
    return _MD_HEADING.sub("", line.text).strip()


def _normalize_heading(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join("".join(ch if ch.isalnum() else " " for ch in folded).split())


def _near_duplicates(a: str, b: str) -> bool:
    na, nb = _normalize_heading(a), _normalize_heading(b)
    if na == nb:
        return True
    return difflib.SequenceMatcher(None, na, nb, autojunk=False).ratio() >= _NEAR_DUPLICATE_RATIO


def _pick_title(variants: list[str]) -> str:
    """Most frequent variant (whitespace-collapsed); ties go to the longest, then the first."""
    collapsed = [" ".join(v.split()) for v in variants]
    counts = Counter(collapsed)
    return max(collapsed, key=lambda v: (counts[v], len(v)))  # max keeps the first on ties


def _paragraphs(lines: Sequence[_Line]) -> list[_Paragraph]:
    paragraphs: list[_Paragraph] = []
    current: list[_Line] = []
    for line in lines:
        if line.blank:
            if current:
                paragraphs.append(_Paragraph(current))
                current = []
        else:
            current.append(line)
    if current:
        paragraphs.append(_Paragraph(current))
    return paragraphs


def _render(lines: Sequence[_Line]) -> str:
    """Markdown for lines of one logical block.

    Runs of text lines become one paragraph (soft-wrapped lines joined by a space); runs of
    bullet lines become a ``- item`` list; an indented non-bullet line right after a bullet
    continues that bullet's item. Blocks are separated by a blank line.
    """
    blocks: list[str] = []
    words: list[str] = []
    items: list[str] = []

    def flush_text() -> None:
        if words:
            blocks.append(" ".join(words))
            words.clear()

    def flush_items() -> None:
        if items:
            blocks.append("\n".join(f"- {item}" for item in items))
            items.clear()

    for line in lines:
        item = _bullet_item(line)
        if item is not None:
            flush_text()
            if item:
                items.append(item)
        elif items and line.indented:
            items[-1] = f"{items[-1]} {line.text}"
        else:
            flush_items()
            words.append(line.text)
    flush_text()
    flush_items()
    return "\n\n".join(blocks)


@dataclass
class _QuestionBuilder:
    first_line: int
    lines: list[_Line] = field(default_factory=list)
    from_bullet: bool = False  # one bullet item standing on its own as a question

    @property
    def accepts_bullets(self) -> bool:
        """Bullets attach only to questions written as paragraphs."""
        return not self.from_bullet

    def render(self) -> str:
        if self.from_bullet:
            head = _bullet_item(self.lines[0]) or ""
            return " ".join([head, *(ln.text for ln in self.lines[1:])]).strip()
        return _render(self.lines)


def _split_bullet_questions(lines: list[_Line]) -> tuple[list[_QuestionBuilder], list[_Line]]:
    """Leading bullet items of a paragraph as one question each, plus the rest of the lines."""
    questions: list[_QuestionBuilder] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if _bullet_item(line) is not None:
            questions.append(_QuestionBuilder(line.number, [line], from_bullet=True))
        elif questions and line.indented:
            questions[-1].lines.append(line)  # wrapped continuation of the bullet item
        else:
            break
        index += 1
    questions = [q for q in questions if q.render()]
    return questions, lines[index:]


def _build_questions(paragraphs: Sequence[_Paragraph]) -> list[_QuestionBuilder]:
    questions: list[_QuestionBuilder] = []
    previous_last_line: int | None = None
    for paragraph in paragraphs:
        lines = paragraph.lines
        starts_with_bullet = _bullet_item(lines[0]) is not None
        if starts_with_bullet:
            gap = paragraph.first - previous_last_line - 1 if previous_last_line else None
            if questions and questions[-1].accepts_bullets and gap is not None and gap <= 1:
                # A list belonging to the question paragraph above (at most one blank line).
                questions[-1].lines.extend(lines)
                lines = []
            else:
                bullet_questions, lines = _split_bullet_questions(lines)
                questions.extend(bullet_questions)
        if lines:
            questions.append(_QuestionBuilder(lines[0].number, list(lines)))
        previous_last_line = paragraph.last
    return questions


def _text_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _control_char_problems(raw_lines: Sequence[str]) -> list[Problem]:
    problems = []
    for number, raw in enumerate(raw_lines, start=1):
        found = _first_control_char(raw)
        if found is not None:
            column, ch = found
            problems.append(
                Problem(
                    message=(
                        f"contains the control character {_char_name(ch)} at column "
                        f"{column + 1}; remove it (only tabs and line breaks are allowed)"
                    ),
                    line=number,
                )
            )
    return problems


def parse_assignment_text(text: str) -> AssignmentDraft:
    """Parse the plain-text assignment format.

    Layout, top to bottom:

    1. Title block: the leading paragraphs whose every line is a short heading (at most
       ``MAX_TITLE_CHARS`` characters, not ending in ``. ? !`` or ``:``, not a bullet).
       Consecutive near-duplicate heading lines are one title (the most frequent variant,
       ties to the longest, then the first). Heading lines after the first non-duplicate become
       ``instructions`` (one markdown paragraph each).
    2. Questions: each following paragraph is one question, wrapped lines joined by a space.
       Bullet/numbered lines become ``- item`` list items of the question paragraph they
       follow (across at most one blank line); bullets not following a question paragraph
       are one question each.
    3. Optional ``Paper For Above instruction`` line, then the sample paper.
    4. Optional ``References`` (or ``Bibliography`` / ``Works Cited``) heading, then one
       citation per non-empty line with its bullet or number removed.
    """
    text = _strip_bom(text)
    if len(text) > MAX_DOCUMENT_CHARS:
        raise _reject([_size_problem(text)])

    raw_lines = _text_lines(text)
    control = _control_char_problems(raw_lines)
    if control:
        raise _reject(control)

    lines = [_Line(number, raw.rstrip()) for number, raw in enumerate(raw_lines, start=1)]
    if all(line.blank for line in lines):
        raise _reject([Problem(message="the document is empty (it contains no text)", line=1)])

    problems: list[Problem] = []

    # --- section markers -------------------------------------------------------------
    paper_index = next((i for i, ln in enumerate(lines) if _PAPER_MARKER.match(ln.text)), None)
    refs_start = paper_index + 1 if paper_index is not None else 0
    refs_index = next(
        (i for i in range(refs_start, len(lines)) if _REFERENCES_MARKER.match(lines[i].text)),
        None,
    )
    if paper_index is not None:
        early_refs = next(
            (ln for ln in lines[:paper_index] if _REFERENCES_MARKER.match(ln.text)), None
        )
        if early_refs is not None:
            problems.append(
                Problem(
                    message=(
                        f"the '{early_refs.text}' heading comes before the "
                        f"'{lines[paper_index].text}' line on line {lines[paper_index].number}; "
                        "the sample paper must come before the references"
                    ),
                    line=early_refs.number,
                )
            )
        paper_end = refs_index if refs_index is not None else len(lines)
        for ln in lines[paper_index + 1 : paper_end]:
            if _PAPER_MARKER.match(ln.text):
                problems.append(
                    Problem(
                        message=(
                            f"a second '{ln.text}' line; there may be only one (the first is "
                            f"on line {lines[paper_index].number})"
                        ),
                        line=ln.number,
                    )
                )

    body_end = next(
        (i for i in (paper_index, refs_index) if i is not None),
        len(lines),
    )
    end_marker = lines[body_end] if body_end < len(lines) else None

    # --- title block -----------------------------------------------------------------
    body = _paragraphs(lines[:body_end])
    title = ""
    instructions = ""
    heading_lines: list[_Line] = []
    first_line = next(ln for ln in lines if not ln.blank)
    first_paragraph = body[0] if body else None
    if first_paragraph is None or first_paragraph.first != first_line.number:
        # The very first text is a section marker.
        problems.append(
            Problem(
                message=(
                    "the document must start with a title line, but it starts with the "
                    f"'{first_line.text}' line"
                ),
                line=first_line.number,
            )
        )
    elif (
        len(first_paragraph.lines) == 1
        and len(first_line.text) > MAX_TITLE_CHARS
        and not _ends_sentence(first_line.text)
        and _bullet_item(first_line) is None
    ):
        problems.append(
            Problem(
                message=(
                    f"the title is {len(first_line.text):,} characters long; the limit is "
                    f"{MAX_TITLE_CHARS}"
                ),
                line=first_line.number,
            )
        )
        body = body[1:]
    elif not all(_is_heading(ln) for ln in first_paragraph.lines):
        problems.append(
            Problem(
                message=(
                    "the document must start with a title: a short line on its own, without "
                    "sentence-ending punctuation, followed by a blank line; this looks like "
                    "body text instead"
                ),
                line=first_line.number,
            )
        )
    else:
        while body and all(_is_heading(ln) for ln in body[0].lines):
            heading_lines.extend(body.pop(0).lines)
        variants = [_heading_text(heading_lines[0])]
        rest = heading_lines[1:]
        while rest and any(_near_duplicates(_heading_text(rest[0]), v) for v in variants):
            variants.append(_heading_text(rest.pop(0)))
        title = _pick_title(variants)
        instructions = "\n\n".join(_heading_text(ln) for ln in rest)

    # --- questions -------------------------------------------------------------------
    builders = _build_questions(body)
    if not builders and first_paragraph is not None:
        if end_marker is not None:
            message = f"no questions found before line {end_marker.number} '{end_marker.text}'"
        else:
            after = heading_lines[-1].number if heading_lines else first_line.number
            message = f"no questions found after the title (the document ends after line {after})"
        if instructions:
            message += (
                "; note that short lines without sentence-ending punctuation right after the "
                "title are read as headings, not questions"
            )
        problems.append(
            Problem(
                message=message,
                line=end_marker.number if end_marker is not None else first_line.number,
            )
        )
    elif not builders:
        problems.append(
            Problem(
                message=f"no questions found before line {first_line.number} '{first_line.text}'",
                line=first_line.number,
            )
        )
    if len(builders) > MAX_QUESTIONS:
        extra = builders[MAX_QUESTIONS]
        problems.append(
            Problem(
                message=(
                    f"the document has {len(builders)} questions; at most {MAX_QUESTIONS} are "
                    f"allowed (question {MAX_QUESTIONS + 1} starts on this line)"
                ),
                line=extra.first_line,
            )
        )
    questions: list[QuestionDraft] = []
    for number, builder in enumerate(builders, start=1):
        prompt = builder.render()
        if len(prompt) > MAX_QUESTION_CHARS:
            problems.append(
                Problem(
                    message=(
                        f"question {number} is {len(prompt):,} characters long; the limit is "
                        f"{MAX_QUESTION_CHARS:,}"
                    ),
                    line=builder.first_line,
                )
            )
        questions.append(QuestionDraft(prompt=prompt))

    # --- sample paper ----------------------------------------------------------------
    sample_paper: str | None = None
    if paper_index is not None:
        paper_end = refs_index if refs_index is not None else len(lines)
        paper_lines = [
            ln for ln in lines[paper_index + 1 : paper_end] if not _PAPER_MARKER.match(ln.text)
        ]
        rendered = [_render(p.lines) for p in _paragraphs(paper_lines)]
        sample_paper = "\n\n".join(r for r in rendered if r) or None

    # --- references ------------------------------------------------------------------
    references: list[str] = []
    if refs_index is not None:
        for ln in lines[refs_index + 1 :]:
            if ln.blank or _REFERENCES_MARKER.match(ln.text):
                continue
            citation = _bullet_item(ln)
            if citation is None:
                citation = _REFERENCE_NUMBER.sub("", ln.raw).strip()
            if not citation:
                continue
            if len(references) == MAX_REFERENCES:
                problems.append(
                    Problem(
                        message=(
                            f"too many references: at most {MAX_REFERENCES} are allowed, and "
                            f"reference {MAX_REFERENCES + 1} starts on this line"
                        ),
                        line=ln.number,
                    )
                )
                break
            references.append(citation)

    if problems:
        raise _reject(sorted(problems, key=lambda p: p.line or 0))
    return AssignmentDraft(
        title=title,
        instructions=instructions,
        questions=tuple(questions),
        sample_paper=sample_paper,
        references=tuple(references),
    )


# --------------------------------------------------------------------------------------
# Structured format (already-decoded JSON or TOML)
# --------------------------------------------------------------------------------------


def _no_control_chars(value: str) -> str:
    found = _first_control_char(value)
    if found is not None:
        index, ch = found
        raise ValueError(
            f"contains the control character {_char_name(ch)} at character {index + 1}; "
            "remove it (only tabs and line breaks are allowed)"
        )
    return value


def _single_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line (it contains a line break)")
    return value


def _question_shorthand(value: object) -> object:
    return {"prompt": value} if isinstance(value, str) else value


def _text(max_chars: int, *, min_chars: int = 1) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_chars, max_length=max_chars)


_Clean = AfterValidator(_no_control_chars)
_OneLine = AfterValidator(_single_line)
_Title = Annotated[str, _text(MAX_TITLE_CHARS), _Clean, _OneLine]
_Prompt = Annotated[str, _text(MAX_QUESTION_CHARS), _Clean]
_LongText = Annotated[str, _text(MAX_DOCUMENT_CHARS, min_chars=0), _Clean]
_Reference = Annotated[str, _text(_MAX_REFERENCE_CHARS), _Clean, _OneLine]
_Label = Annotated[str, _text(_MAX_LABEL_CHARS), _Clean, _OneLine]
_Source = Annotated[str, _text(_MAX_SOURCE_CHARS, min_chars=0), _Clean, _OneLine]
_Description = Annotated[str, _text(_MAX_DESCRIPTION_CHARS, min_chars=0), _Clean]
_Key = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=_MAX_KEY_CHARS,
        pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuestionSpec(_Model):
    prompt: _Prompt


class RubricComponentSpec(_Model):
    key: _Key | None = None
    label: _Label
    description: _Description = ""
    question: Annotated[int, Field(ge=1, le=MAX_QUESTIONS, strict=True)] | None = Field(
        default=None, description="The number (from 1) of the question it comes from"
    )


class RubricSpec(_Model):
    source: _Source | None = None
    components: list[RubricComponentSpec] = Field(
        default_factory=list, max_length=MAX_RUBRIC_COMPONENTS
    )


class AssignmentSpec(_Model):
    """The structured assignment format (JSON or TOML); a question may be a plain string."""

    title: _Title
    instructions: _LongText = ""
    reviews_per_paper: Annotated[int, Field(ge=1, le=10, strict=True)] = 3
    allow_anonymous_posts: StrictBool = True
    questions: list[
        Annotated[
            QuestionSpec,
            BeforeValidator(_question_shorthand, json_schema_input_type=str | QuestionSpec),
        ]
    ] = Field(min_length=1, max_length=MAX_QUESTIONS)
    sample_paper: _LongText | None = None
    references: list[_Reference] = Field(default_factory=list, max_length=MAX_REFERENCES)
    rubric: RubricSpec | None = None


_MODEL_FOR_PATH: dict[tuple[str, ...], type[BaseModel]] = {
    (): AssignmentSpec,
    ("questions", "*"): QuestionSpec,
    ("rubric",): RubricSpec,
    ("rubric", "components", "*"): RubricComponentSpec,
}


def _field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    shape = tuple("*" if isinstance(part, int) else part for part in loc)
    return _MODEL_FOR_PATH.get(shape)


def _describe_type(value: object) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _short_repr(value: object, limit: int = 40) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return "a very large number"
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _error_message(error: Any) -> str:  # pydantic_core.ErrorDetails
    kind: str = error["type"]
    loc: tuple[int | str, ...] = error["loc"]
    ctx: dict[str, Any] = error.get("ctx", {})
    value = error.get("input")
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = ", ".join(model.model_fields) if model else ""
        suffix = f"; allowed fields here are: {allowed}" if allowed else ""
        return f"is not a recognised field{suffix}"
    if kind == "string_type":
        return f"must be text, not {_describe_type(value)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        length = f" ({len(value):,} characters)" if isinstance(value, str) else ""
        return f"is too long{length}; at most {ctx.get('max_length', 0):,} characters are allowed"
    if kind == "string_pattern_mismatch":
        return (
            "must be a slug of lowercase letters, digits and single hyphens, "
            f"e.g. 'secure-base' (got {_short_repr(value)})"
        )
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"must be a whole number, not {_describe_type(value)}"
    if kind in {"greater_than_equal", "less_than_equal"}:
        if loc and loc[-1] == "question":
            return f"must be a question number from 1 (got {_short_repr(value)})"
        return f"must be between 1 and 10 (got {_short_repr(value)})"
    if kind == "bool_type":
        return f"must be true or false, not {_describe_type(value)}"
    if kind == "list_type":
        return f"must be a list, not {_describe_type(value)}"
    if kind == "too_short":
        if loc == ("questions",):
            return "must contain at least one question"
        return f"must contain at least {ctx.get('min_length', 1)} item(s)"
    if kind == "too_long":
        return (
            f"has {ctx.get('actual_length', '?')} items; at most {ctx.get('max_length', '?')} "
            "are allowed"
        )
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        if not loc:
            return (
                "the document must be an object (a JSON object or TOML table) at the top "
                f"level, not {_describe_type(value)}"
            )
        if len(loc) == 2 and loc[0] == "questions":
            return (
                'each question must be text or an object with a "prompt", '
                f"not {_describe_type(value)}"
            )
        return f"must be an object with named fields, not {_describe_type(value)}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return str(error["msg"])


def _validation_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        problems.append(Problem(message=_error_message(error), field=_field_path(loc) or None))
    return problems


def parse_assignment_structured(data: object) -> AssignmentDraft:
    """Validate an already-decoded JSON/TOML value against the assignment schema.

    Problems name a field path such as ``questions[2].prompt`` (indexes count from 0).
    """
    try:
        parsed = AssignmentSpec.model_validate(data)
    except ValidationError as exc:
        raise _reject(_validation_problems(exc)) from None
    except RecursionError:
        raise _reject(
            [Problem(message="the document is nested too deeply to be read", field=None)]
        ) from None

    problems: list[Problem] = []
    components: list[RubricComponentDraft] = []
    stance_source: str | None = None
    if parsed.rubric is not None:
        stance_source = parsed.rubric.source or None
        used: dict[str, int] = {}
        for index, component in enumerate(parsed.rubric.components):
            path = f"rubric.components[{index}]"
            derived = component.key is None
            key = component.key or _slugify(component.label) or f"component-{index + 1}"
            if key in used:
                how = f"derived from the label {component.label!r}" if derived else "given"
                problems.append(
                    Problem(
                        message=(
                            f"the key {key!r} ({how}) is already used by "
                            f"rubric.components[{used[key]}]; rubric keys must be unique"
                        ),
                        field=path if derived else f"{path}.key",
                    )
                )
            else:
                used[key] = index
            if component.question is not None and component.question > len(parsed.questions):
                problems.append(
                    Problem(
                        message=(
                            f"names question {component.question}, but the document has "
                            f"{len(parsed.questions)} question(s)"
                        ),
                        field=f"{path}.question",
                    )
                )
            components.append(
                RubricComponentDraft(
                    key=key,
                    label=component.label,
                    description=component.description,
                    question=component.question,
                )
            )
    if problems:
        raise _reject(problems)
    return AssignmentDraft(
        title=parsed.title,
        instructions=parsed.instructions,
        questions=tuple(QuestionDraft(prompt=q.prompt) for q in parsed.questions),
        sample_paper=parsed.sample_paper or None,
        references=tuple(parsed.references),
        stance_source=stance_source,
        rubric=tuple(components),
        reviews_per_paper=parsed.reviews_per_paper,
        allow_anonymous_posts=parsed.allow_anonymous_posts,
    )


# --------------------------------------------------------------------------------------
# A starting rubric, proposed from the references and the questions
# --------------------------------------------------------------------------------------

_YEAR = re.compile(r"\((\d{4}[a-z]?|n\.\s?d\.)[^)]*\)")
_INITIALS = re.compile(r"^(?:[A-Z]\.\s*-?\s*)+$")
_AUTHOR_JOINERS = re.compile(r"\s*(?:&|\band\b)\s*")
_SENTENCE = re.compile(r"(?<=[.?!])[\"'\u201d\u2019)]*\s+(?=[\"'\u201c\u2018(]?[A-Z])")
_MAX_PROPOSED_LABEL_CHARS = 120
_MAX_PROPOSED_KEY_CHARS = 40
_TASK_VERB = re.compile(
    r"^(?:reflect|discuss|describe|explain|compare|contrast|consider|analy[sz]e|evaluate|"
    r"identify|summari[sz]e|outline|explore|argue|assess|critique|define|examine|justify)\b",
    re.IGNORECASE,
)


def citation_authors(citation: str) -> list[str]:
    """The surnames of an APA-style citation ("Mikulincer, M., & Shaver, P. R. (2019). ...":
    Mikulincer, Shaver); [] when it has no "(year)" to tell authors from title."""
    year = _YEAR.search(citation)
    if year is None:
        return []
    names = []
    for part in citation[: year.start()].split(","):
        for piece in _AUTHOR_JOINERS.split(part.strip()):
            piece = piece.strip().rstrip(".").strip()
            if piece and not _INITIALS.match(piece + ".") and piece.lower() != "et al":
                names.append(piece)
    return names


def short_citation(citation: str) -> str:
    """How reviewers are asked about a source: "Mikulincer & Shaver (2019)", "Bowlby
    (1988)", "Levy et al. (2014)"; the citation's first sentence when it is not APA-like."""
    citation = " ".join(citation.split())
    year = _YEAR.search(citation)
    names = citation_authors(citation)
    if year is not None and names:
        who = (
            names[0]
            if len(names) == 1
            else f"{names[0]} & {names[1]}"
            if len(names) == 2
            else f"{names[0]} et al."
        )
        short = f"{who} ({year.group(1)})"
    else:
        short = citation.split(". ", 1)[0]
    return short[:_MAX_SOURCE_CHARS].strip()


def _mentions(text: str, names: Sequence[str]) -> bool:
    return any(re.search(rf"\b{re.escape(name)}\b", text) for name in names)


def _proposed_label(prompt: str) -> str:
    """The question's first question sentence (else its first sentence), as a label."""
    text = " ".join(re.sub(r"^- ", "", prompt, flags=re.MULTILINE).split())
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    first = sentences[0] if sentences else text
    asked = next((s for s in sentences if s.rstrip(_CLOSERS).endswith("?")), None)
    # "Reflect on…", "Discuss how…" say the task; otherwise the question asked says it best.
    label = first if _TASK_VERB.match(first) or asked is None else asked
    if len(label) > _MAX_PROPOSED_LABEL_CHARS:
        cut = label[: _MAX_PROPOSED_LABEL_CHARS - 1].rsplit(" ", 1)[0]
        label = cut.rstrip(",;:-\u2013\u2014 ") + "\u2026"
    return label


def propose_rubric(draft: AssignmentDraft) -> AssignmentDraft:
    """A starting rubric for a document that has none: the first reference is the stance
    source, and each question that is not about another reference (it names another
    reference's authors and not the source's) becomes a component linked to it. The
    instructor confirms or edits it; a draft that already has a rubric is returned as is."""
    if draft.rubric or not draft.references:
        return draft
    source_citation = draft.references[0]
    source_names = citation_authors(source_citation)
    others = [n for ref in draft.references[1:] for n in citation_authors(ref)]
    others = [n for n in others if n not in source_names]
    chosen = [
        number
        for number, question in enumerate(draft.questions, start=1)
        if _mentions(question.prompt, source_names) or not _mentions(question.prompt, others)
    ] or list(range(1, len(draft.questions) + 1))
    source = draft.stance_source or short_citation(source_citation)
    components: list[RubricComponentDraft] = []
    used: set[str] = set()
    for number in chosen[:MAX_RUBRIC_COMPONENTS]:
        label = _proposed_label(draft.questions[number - 1].prompt)
        slug = _slugify(label)
        if len(slug) > _MAX_PROPOSED_KEY_CHARS:
            slug = slug[: _MAX_PROPOSED_KEY_CHARS + 1].rsplit("-", 1)[0]
        key = unique_key(slug or f"component-{number}", used)
        used.add(key)
        components.append(
            RubricComponentDraft(
                key=key,
                label=label,
                description=f"Does the answer to question {number} agree with {source}?",
                question=number,
            )
        )
    return replace(draft, stance_source=source, rubric=tuple(components))


def unique_key(base: str, used: set[str] | frozenset[str]) -> str:
    """`base`, or `base-2`, `base-3`… : the first not in `used` (at most 64 characters)."""
    base = base[:_MAX_KEY_CHARS].rstrip("-") or "component"
    key, n = base, 1
    while key in used:
        n += 1
        suffix = f"-{n}"
        key = base[: _MAX_KEY_CHARS - len(suffix)].rstrip("-") + suffix
    return key


def slugify(label: str) -> str:
    """A rubric key from a label: lowercase ASCII letters, digits and hyphens."""
    return _slugify(label)


# --------------------------------------------------------------------------------------
# Document dispatch
# --------------------------------------------------------------------------------------

_JSON_TYPES = {"application/json", "text/json"}
_TOML_TYPES = {"application/toml", "text/toml", "text/x-toml", "application/x-toml"}
_TOML_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _decode(content: bytes | str) -> str:
    if isinstance(content, str):
        return _strip_bom(content)
    if len(content) > 4 * MAX_DOCUMENT_CHARS:  # cannot fit in the limit even as 1 char/4 bytes
        raise _reject(
            [
                Problem(
                    message=(
                        f"the file is {len(content):,} bytes long; documents are limited to "
                        f"{MAX_DOCUMENT_CHARS:,} characters"
                    ),
                    line=content.count(b"\n", 0, 4 * MAX_DOCUMENT_CHARS) + 1,
                )
            ]
        )
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = content[exc.start : exc.start + 1].hex()
        raise _reject(
            [
                Problem(
                    message=(
                        f"the file is not valid UTF-8 text (byte 0x{bad} at byte offset "
                        f"{exc.start}); save it with UTF-8 encoding and upload it again"
                    ),
                    line=content.count(b"\n", 0, exc.start) + 1,
                )
            ]
        ) from None


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _detect_format(text: str, filename: str | None, content_type: str | None) -> str:
    media = _media_type(content_type)
    name = (filename or "").strip().lower()
    if media in _JSON_TYPES or media.endswith("+json"):
        return "json"
    if media in _TOML_TYPES:
        return "toml"
    if name.endswith(".json"):
        return "json"
    if name.endswith(".toml"):
        return "toml"
    if text.lstrip().startswith("{"):
        return "json"
    return "text"


def _load_json(text: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        problem = Problem(
            message=f"this is not valid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno
        )
    except _DuplicateKey as exc:
        problem = Problem(
            message=f"the key {exc.key!r} appears more than once in the same JSON object"
        )
    except RecursionError:
        problem = Problem(message="the JSON document is nested too deeply to be read")
    except ValueError:  # an integer too long to convert (sys.int_info.str_digits_check_threshold)
        problem = Problem(
            message="this JSON could not be read: it contains a number with too many digits"
        )
    raise _reject([problem])


def _load_toml(text: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        line: int | None = getattr(exc, "lineno", None)
        located = _TOML_LINE.search(message)
        if located:
            line = line or int(located.group(1))
            message = f"{message[: located.start()]} (column {located.group(2)})"
        elif _TOML_END.search(message):
            line = line or len(_text_lines(text))
            message = _TOML_END.sub(" (at the end of the document)", message)
        problem = Problem(message=f"this is not valid TOML: {message}", line=line)
    except RecursionError:
        problem = Problem(message="the TOML document is nested too deeply to be read")
    raise _reject([problem])


def parse_assignment_document(
    content: bytes | str, *, filename: str | None = None, content_type: str | None = None
) -> AssignmentDraft:
    """Dispatch: JSON (content_type application/json or .json, or text starting with '{'),
    TOML (.toml or application/toml), else the plain-text format. Bytes must be UTF-8 (a UTF-8
    BOM is stripped); invalid UTF-8 → ImportRejected saying so."""
    text = _decode(content)
    if len(text) > MAX_DOCUMENT_CHARS:
        raise _reject([_size_problem(text)])
    kind = _detect_format(text, filename, content_type)
    if kind == "json":
        return parse_assignment_structured(_load_json(text))
    if kind == "toml":
        return parse_assignment_structured(_load_toml(text))
    return parse_assignment_text(text)
