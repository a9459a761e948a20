"""Papers uploaded as files: what kind of file it is (sniffed from its bytes, never from its
name or declared type) and its text, extracted and normalized.

Only the text leaves this module. Files carry their author in places that are not the
paper: DOCX core properties, comments, the author of each tracked change; PDF Info and
XMP. None of those are read: a DOCX is converted by mammoth (tracked insertions taken as
accepted, deletions and comments dropped, images skipped, no external files, the
document's own embedded style map ignored, so a file cannot ask for its comments to be
shown), a PDF by pypdf's text extraction of page content only. The original bytes are
dropped once the text is out.

Every refusal is an `Invalid` on the field ``file`` that says what to do instead.
"""

from __future__ import annotations

import asyncio
import enum
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser

import mammoth
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from services.errors import Invalid, Problem
from services.markdown import MAX_MARKDOWN_CHARS

FIELD = "file"
MAX_PDF_PAGES = 500
# A DOCX is a zip: refuse archives whose parts would inflate to more than this (zip bombs).
MAX_DOCX_UNZIPPED_BYTES = 64 * 1024 * 1024
MAX_DOCX_PARTS = 5_000
EXTRACT_DEADLINE_SECONDS = 20.0

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class DocumentKind(enum.StrEnum):
    docx = "docx"
    pdf = "pdf"
    text = "text"  # .md or .txt: UTF-8 text, taken as markdown like a typed paper


@dataclass(frozen=True)
class Extracted:
    kind: DocumentKind
    text: str


def _refuse(message: str) -> Invalid:
    return Invalid(problems=[Problem(message, field=FIELD)])


UNSUPPORTED = (
    "is not a .docx, .pdf, .md or .txt file (the file's contents decide, not its name); "
    "save it in one of those formats, or paste the text"
)


def sniff(data: bytes) -> DocumentKind:
    """What the bytes are: a Word document, a PDF or UTF-8 text; refused otherwise."""
    if not data:
        raise _refuse("is empty")
    if data[:1024].lstrip(b"\x00\t\n\r\f ").startswith(b"%PDF-"):
        return DocumentKind.pdf
    if data.startswith(b"PK"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, ValueError, OSError):
            raise _refuse("looks like a zip archive but is damaged; save it again") from None
        if "word/document.xml" in names:
            return DocumentKind.docx
        raise _refuse(UNSUPPORTED)
    if data.startswith(OLE_MAGIC):
        raise _refuse(
            "is an older Word (.doc) file or a password-protected document; save it as .docx "
            "without a password, or as PDF"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(UNSUPPORTED) from None
    if _BINARY.search(text):
        raise _refuse(UNSUPPORTED)
    return DocumentKind.text


# Control characters other than tab, newline, carriage return and form feed mean "binary".
_BINARY = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# Dropped from extracted text: other controls, the byte-order mark, soft hyphens (PDFs).
_DROP = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff\u00ad]")
_BLANK_RUN = re.compile(r"\n{3,}")


def normalize(text: str) -> str:
    """One shape for every source: NFC, newlines only, no stray controls, no trailing spaces,
    at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _DROP.sub("", text.replace("\f", "\n\n"))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUN.sub("\n\n", text).strip("\n")


# --- DOCX ----------------------------------------------------------------------------------


def _docx_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        # Images (word/media) are never read, so only the other parts count.
        unzipped = sum(i.file_size for i in infos if not i.filename.startswith("word/media/"))
        if len(infos) > MAX_DOCX_PARTS or unzipped > MAX_DOCX_UNZIPPED_BYTES:
            raise _refuse("unpacks to far more than a paper; save it again without extras")
    try:
        result = mammoth.convert_to_html(
            io.BytesIO(data),
            convert_image=lambda image: [],  # never read (nor fetch) images
            include_embedded_style_map=False,  # the file may not switch comments on
            external_file_access=False,
        )
    except Exception:
        # mammoth raises whatever its zip and XML readers raise on a damaged file.
        raise _refuse("could not be read as a Word document; save it again as .docx") from None
    return _HtmlToText.convert(result.value)


class _HtmlToText(HTMLParser):
    """mammoth's HTML as light markdown: headings with #, list items with - or 1., table
    rows with | between cells; inline formatting kept as plain words so that quotes of the
    paper read as the reviewer sees them."""

    BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.lists: list[list[int]] = []  # per open list: [is_ordered, next number]
        self.skip = 0  # inside a footnote's back link
        self.cells = 0

    @classmethod
    def convert(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        parser.close()
        parser._flush()
        return "\n\n".join(parser.blocks)

    def _flush(self) -> None:
        text = "".join(self.current).strip()
        if text:
            self.blocks.append(text)
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("ul", "ol"):
            self._flush()
            self.lists.append([tag == "ol", 1])
        elif tag in self.BLOCKS:
            self._flush()
            if tag[0] == "h" and tag[1:].isdigit():
                self.current.append("#" * int(tag[1:]) + " ")
            elif tag == "li" and self.lists:
                indent = "   " * (len(self.lists) - 1)
                ordered, number = self.lists[-1]
                self.current.append(f"{indent}{number}. " if ordered else f"{indent}- ")
                self.lists[-1][1] += 1
            elif tag == "tr":
                self.cells = 0
        elif tag in ("td", "th"):
            if self.cells:
                self.current.append(" | ")
            self.cells += 1
        elif tag == "br":
            self.current.append("\n")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            if href.startswith(("#footnote-ref-", "#endnote-ref-")):
                self.skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("ul", "ol"):
            self._flush()
            if self.lists:
                self.lists.pop()
        elif tag in self.BLOCKS:
            self._flush()
        elif tag == "a" and self.skip:
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.current.append(data)


# --- PDF -----------------------------------------------------------------------------------


def _pdf_text(data: bytes) -> str:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise _refuse(
                "is a protected (encrypted) PDF; save or export it again without a password "
                "or restrictions"
            )
        pages = reader.pages
        if len(pages) > MAX_PDF_PAGES:
            raise _refuse(f"has more than {MAX_PDF_PAGES} pages")
        # Page content only: the Info dictionary and XMP metadata are never asked for.
        texts = [page.extract_text() or "" for page in pages]
    except Invalid:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, OSError, zipfile.BadZipFile, AssertionError):  # fmt: skip
        raise _refuse("could not be read as a PDF (it may be damaged); export it again") from None
    return "\n\n".join(texts)


# --- all kinds -----------------------------------------------------------------------------


def extract(data: bytes) -> Extracted:
    """The text of a paper file, normalized; refused when the file is of another kind,
    damaged, encrypted, or holds no text."""
    kind = sniff(data)
    if kind is DocumentKind.docx:
        raw = _docx_text(data)
    elif kind is DocumentKind.pdf:
        raw = _pdf_text(data)
    else:
        raw = data.decode("utf-8")
    text = normalize(raw)
    if not text.strip():
        if kind is DocumentKind.pdf:
            raise _refuse(
                "has no text that can be extracted (a scan or an image?); upload the document "
                "it was made from, or paste the text"
            )
        raise _refuse("has no text")
    if len(text) > MAX_MARKDOWN_CHARS:
        raise _refuse(
            f"holds {len(text):,} characters of text; a paper may have at most "
            f"{MAX_MARKDOWN_CHARS:,}"
        )
    return Extracted(kind, text)


async def extract_bounded(data: bytes) -> Extracted:
    """`extract` off the event loop; a file that takes too long to read is refused."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(extract, data), EXTRACT_DEADLINE_SECONDS)
    except TimeoutError:
        raise _refuse("took too long to read; save it again as a simpler file") from None
