"""Load stage: files and API records -> cleaned ``Document``s, plus a report of what was skipped.

A bad input never raises: each file (or JSONL line, or API record) that cannot be used is recorded
as a ``Skipped`` with a human-readable reason and logged at warning level, and loading goes on.
Every text passes through ``clean_text``; the cleaned text is what gets stored, so all later
character offsets point into exactly ``Document.text``.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rag.cleaning import clean_text, clean_title, extract_title
from rag.schema import Document

__all__ = [
    "SUPPORTED_SUFFIXES",
    "LoadReport",
    "Skipped",
    "combine_reports",
    "documents_from_records",
    "files_to_load",
    "load_file",
    "load_paths",
    "url_problem",
]

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = frozenset({".txt", ".md"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".jsonl"}

# C0 control bytes other than \t \n \v \f \r: common in binaries, (almost) never in text.
_CONTROL_BYTES = bytes([*range(0x09), *range(0x0E, 0x20), 0x7F])
_BINARY_CONTROL_RATIO = 0.10
_BINARY_SAMPLE = 64 * 1024
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Skipped:
    """An input that was not loaded (a file, ``file.jsonl:LINE`` or ``records[i]``) and why."""

    path: str
    reason: str
    # The input holds text that could not be read (not found, undecodable, too large, a bad
    # record): pruning would delete what the index has of it. False when there is nothing to
    # read: an unsupported file type, an empty input, a duplicate id.
    unread: bool = True


@dataclass
class LoadReport:
    """What a load produced: the documents, in deterministic order, and everything skipped."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


class _Skip(Exception):
    """Raised inside the loaders to abandon one input with a reason (never escapes this module)."""

    def __init__(self, reason: str, unread: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unread = unread


# --- public API ---------------------------------------------------------------------------------


def load_paths(paths: Sequence[Path | str], *, max_file_bytes: int | None = None) -> LoadReport:
    """Load files and directories (recursively, sorted, hidden entries ignored) into Documents.

    ``doc_id`` is the path relative to the given directory without its extension (forward
    slashes), or the stem of a file given directly; JSONL records keep their own ``id``.
    ``max_file_bytes`` defaults to the ``max_file_bytes`` setting.
    """
    if max_file_bytes is None:
        from rag.config import get_settings

        max_file_bytes = get_settings().max_file_bytes
    targets, walk_skips = files_to_load(paths)
    report = combine_reports(
        [LoadReport(skipped=walk_skips)] + [load_file(file, doc_id, max_file_bytes=max_file_bytes) for file, doc_id in targets]
    )
    logger.info(
        "loaded %d documents, skipped %d inputs",
        len(report.documents),
        len(report.skipped),
    )
    return report


def files_to_load(
    paths: Sequence[Path | str],
) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """The (file, doc_id) pairs ``load_paths`` reads, in load order, and the inputs it skips
    while walking. Split out so files can be read elsewhere (``rag.distributed`` reads them
    on a cluster) with the same ids and order."""
    if isinstance(paths, str | Path):  # one path, not a sequence of characters
        paths = [paths]
    walk = LoadReport()
    targets: list[tuple[Path, str]] = []
    for given in paths:
        root = Path(given)
        if root.is_dir():
            targets += [(f, f.relative_to(root).with_suffix("").as_posix()) for f in _files_under(root, walk)]
        elif root.is_file():
            targets.append((root, root.stem))
        else:
            _skip(
                walk,
                str(root),
                "not found" if not root.exists() and not root.is_symlink() else "not a regular file",
            )
    return targets, walk.skipped


def load_file(path: Path, doc_id: str, *, max_file_bytes: int) -> LoadReport:
    """The documents of one file (several for JSONL) and what in it was skipped; never raises."""
    report = LoadReport()
    try:
        documents, partial = _load_file(path, doc_id, max_file_bytes)
    except _Skip as exc:
        _skip(report, str(path), exc.reason, exc.unread)
        return report
    except Exception as exc:  # noqa: BLE001 - a parser bug must not abort the whole load
        _skip(report, str(path), f"failed to parse: {type(exc).__name__}: {exc}")
        return report
    for item in partial:
        _skip(report, item.path, item.reason, item.unread)
    report.documents = documents
    return report


def combine_reports(reports: Iterable[LoadReport]) -> LoadReport:
    """Per-file reports, in load order, into one; a doc_id seen before is skipped (ids must be
    unique across one load)."""
    out = LoadReport()
    origin: dict[str, str] = {}  # doc_id -> where it was first loaded from
    for r in reports:
        out.skipped += r.skipped
        for doc in r.documents:
            where = doc.source if doc.source is not None else doc.doc_id
            _add(out, doc, origin, where=where)
    return out


def documents_from_records(records: Iterable[Any]) -> LoadReport:
    """Turn API records ``{id?, title?, text, url?}`` into Documents with the loaders' rules.

    A missing id becomes ``doc-<12 hex>`` from a hash of the cleaned text (stable across calls); a
    missing title comes from ``extract_title``. Bad records are skipped as ``records[i]``.
    """
    report = LoadReport()
    origin: dict[str, str] = {}
    for i, record in enumerate(records):
        where = f"records[{i}]"
        try:
            doc = _record_document(record, source="api")
        except _Skip as exc:
            _skip(report, where, exc.reason)
            continue
        _add(report, doc, origin, where=where)
    return report


# --- walking and bookkeeping --------------------------------------------------------------------


def _skip(report: LoadReport, path: str, reason: str, unread: bool = True) -> None:
    logger.warning("skipped %s: %s", path, reason)
    report.skipped.append(Skipped(path, reason, unread))


def _add(report: LoadReport, doc: Document, origin: dict[str, str], *, where: str) -> None:
    """Append ``doc`` unless its id is taken: ids must be unique across one load."""
    if doc.doc_id in origin:
        _skip(
            report,
            where,
            f"duplicate doc_id {doc.doc_id!r} (already loaded from {origin[doc.doc_id]})",
            unread=False,
        )
        return
    origin[doc.doc_id] = where
    report.documents.append(doc)


def _files_under(root: Path, report: LoadReport) -> list[Path]:
    """All non-hidden files below ``root``, sorted by relative path; symlink loops are cut."""
    files: list[Path] = []
    seen_dirs: set[Path] = set()
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            real = directory.resolve()
            if real in seen_dirs:
                continue
            seen_dirs.add(real)
            entries = list(directory.iterdir())
        except OSError as exc:
            _skip(report, str(directory), f"unreadable directory: {exc.strerror or exc}")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                stack.append(entry)
            else:  # regular files, and also broken links etc., which _load_file reports
                files.append(entry)
    return sorted(files, key=lambda f: f.relative_to(root).as_posix())


# --- one file -----------------------------------------------------------------------------------


def _load_file(path: Path, doc_id: str, limit: int) -> tuple[list[Document], list[Skipped]]:
    """Read one file by its extension; raises ``_Skip`` when nothing in it can be used."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise _Skip(f"unsupported file type {suffix or '(no extension)'!r}", unread=False)
    if not path.is_file():
        raise _Skip("not a regular file")
    data = _read_bytes(path, limit)
    source = str(path)
    if suffix == ".jsonl":
        return _jsonl_documents(path, data)
    if suffix == ".pdf":
        text, title, url = _pdf_text(data), None, None
    elif suffix in HTML_SUFFIXES:
        text, title, url = _html_text(_decode(data, html=True))
    else:
        text, title, url = _decode(data), None, None
    return [_make_document(doc_id, text, title=title, url=url, source=source)], []


def _read_bytes(path: Path, limit: int) -> bytes:
    """The file's bytes, refusing files above ``limit`` before reading them."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise _Skip(f"too large ({size} bytes > {limit} byte limit)")
        data = path.read_bytes()
    except OSError as exc:
        raise _Skip(f"unreadable: {exc.strerror or exc}") from exc
    if len(data) > limit:  # grew since stat
        raise _Skip(f"too large ({len(data)} bytes > {limit} byte limit)")
    if not data.strip():
        raise _Skip("empty", unread=False)
    return data


def _looks_binary(data: bytes) -> bool:
    """NUL bytes, or too many C0 control bytes in the first 64 KiB."""
    if b"\x00" in data:
        return True
    sample = data[:_BINARY_SAMPLE]
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls > _BINARY_CONTROL_RATIO * len(sample)


def _decode(data: bytes, *, html: bool = False) -> str:
    """Strict UTF-8 (a BOM is stripped); UTF-16 only with a BOM; HTML may declare a charset."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise _Skip(f"not valid UTF-16 (at byte offset {exc.start})") from exc
        if _looks_binary(text.encode("utf-8", "surrogatepass")):
            raise _Skip("binary file")
        return text
    if _looks_binary(data):
        raise _Skip("binary file")
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"not valid UTF-8 (byte 0x{data[bom + exc.start]:02x} at offset {bom + exc.start})"
        declared = _META_CHARSET.search(data[:4096]) if html else None
        if declared:
            try:
                return data.decode(declared.group(1).decode("ascii"))
            except (LookupError, UnicodeDecodeError):
                pass
        raise _Skip(reason) from exc


def _make_document(
    doc_id: str,
    text: str,
    *,
    title: str | None = None,
    url: str | None = None,
    source: str | None = None,
) -> Document:
    """Clean ``text`` and build the Document; an empty result is skipped, a missing title derived."""
    cleaned = clean_text(text)
    if not cleaned.strip():
        raise _Skip("empty", unread=False)
    try:
        f"{cleaned}{title or ''}{url or ''}".encode()
    except UnicodeEncodeError as exc:  # lone surrogates, e.g. from JSON "\ud800"
        raise _Skip("text is not valid Unicode (lone surrogate)") from exc
    if (problem := doc_id_problem(doc_id)) is not None:
        raise _Skip(f"doc_id {doc_id[:80]!r} {problem}")
    title = clean_title(title or "") or clean_title(extract_title(cleaned)) or doc_id
    return Document(doc_id=doc_id, title=title, text=cleaned, url=url or None, source=source)


def doc_id_problem(doc_id: str) -> str | None:
    """Why ``doc_id`` cannot name a document (None when it can). A control character: a newline
    splits the citation lines `rag ask` prints. A ``.`` or ``..`` path segment: the id goes into
    ``/documents/{doc_id}`` links, which a URL parser resolves, so the widget's source view of
    ``../../health`` fetched ``/health``."""
    if any(unicodedata.category(ch) == "Cc" for ch in doc_id):
        return "holds a control character"
    if any(part in (".", "..") for part in doc_id.split("/")):
        return "holds a '.' or '..' path segment"
    return None


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a document's link (None when it can): only absolute http(s) URLs with
    a host, no whitespace or control characters. A stored URL is printed in chat replies and
    shown as a link, so ``javascript:``, ``data:`` or ``file:`` must never get in."""
    if not url or any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in url):
        return "must be a URL without spaces or control characters"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return f"must be an http(s) URL, not {parts.scheme + ':' if parts.scheme else 'a relative one'}"
    if not parts.hostname:
        return "must name a host (https://host/...)"
    return None


def is_web_url(url: str | None) -> bool:
    """True for a URL ``url_problem`` accepts."""
    return url is not None and url_problem(url) is None


# --- formats ------------------------------------------------------------------------------------


def _pdf_text(data: bytes) -> str:
    """Page texts joined by blank lines; a PDF with no extractable text has no text layer."""
    import pypdf
    from pypdf.errors import PyPdfError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise _Skip("encrypted PDF")
        pages = []
        for number, page in enumerate(reader.pages, 1):
            try:
                pages.append((page.extract_text() or "").strip("\n"))
            except Exception as exc:  # noqa: BLE001 - one broken page should not lose the others
                logger.warning("PDF page %d unreadable: %s", number, exc)
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise _Skip(f"unreadable PDF: {type(exc).__name__}: {exc}") from exc
    text = "\n\n".join(p for p in pages if p.strip())
    if not text:
        raise _Skip("no text layer")
    return text


def _html_text(html: str) -> tuple[str, str | None, str | None]:
    """Main text, title and canonical URL of an HTML page (trafilatura, stdlib parser fallback).

    lxml is told to allow deep trees (``huge_tree``); beyond even that limit it would silently
    drop the deep content, so such pages, and pages where trafilatura finds nothing, fall back
    to a plain tag-stripping parse.
    """
    import lxml.html
    import trafilatura

    text = title = url = None
    parser = lxml.html.HTMLParser(huge_tree=True, remove_comments=True, encoding="utf-8")
    try:
        tree = lxml.html.document_fromstring(html.encode("utf-8", "surrogatepass"), parser=parser)
        too_deep = any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log)
        if not too_deep:
            # Metadata first: extract() prunes the tree it is given.
            meta = trafilatura.extract_metadata(tree)
            if meta is not None:
                title, url = meta.title, meta.url
            text = trafilatura.extract(tree, include_comments=False, include_tables=True, favor_recall=True)
    except Exception as exc:  # noqa: BLE001 - lxml/trafilatura failure on odd markup: use the fallback
        logger.warning(
            "trafilatura failed (%s: %s); using plain HTML text",
            type(exc).__name__,
            exc,
        )
    if not (text and text.strip()) or not title:
        plain = _PlainHTML.parse(html)
        text = text if text and text.strip() else plain.text
        title = title or plain.title or plain.h1
    if url and not is_web_url(url):
        url = None
    return text or "", title, url


class _PlainHTML(HTMLParser):
    """Fallback HTML -> text: drops scripts, styles and page chrome, one line per block element.

    ``html.parser`` is iterative, so arbitrarily deep nesting cannot exhaust the stack.
    """

    # fmt: off
    SKIP = frozenset({
        "script", "style", "noscript", "template", "svg", "head",
        "nav", "header", "footer", "aside", "form",
    })
    BLOCK = frozenset({
        "address", "article", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "main", "ol", "p", "pre",
        "section", "table", "td", "th", "tr", "ul",
    })
    # fmt: on

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []
        self.in_title = self.in_h1 = False
        self.title = self.h1 = ""

    @classmethod
    def parse(cls, html: str) -> _PlainHTML:
        parser = cls()
        parser.feed(html)
        parser.close()
        return parser

    @property
    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).split("\n"))
        return "\n".join(line for line in lines if line)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_title |= tag == "title"
        self.in_h1 |= tag == "h1" and not self.h1
        if tag in self.SKIP:
            self.skipping.append(tag)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self.in_title &= tag != "title"
        self.in_h1 &= tag != "h1"
        if tag in self.skipping:
            while self.skipping and self.skipping.pop() != tag:
                pass
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title = " ".join(f"{self.title} {data}".split())
        elif self.in_h1:
            self.h1 = " ".join(f"{self.h1} {data}".split())
        if not self.skipping:
            self.parts.append(data)


def _jsonl_documents(path: Path, data: bytes) -> tuple[list[Document], list[Skipped]]:
    """One Document per JSONL line; a bad line is reported as ``path:lineno`` and the rest kept."""
    if b"\x00" in data:
        raise _Skip("binary file")
    data = data.removeprefix(codecs.BOM_UTF8)
    documents: list[Document] = []
    bad: list[Skipped] = []
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Skip(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})") from exc
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _Skip(f"invalid JSON: {exc.msg} (column {exc.colno})") from exc
            documents.append(_record_document(record, source=str(path)))
        except _Skip as exc:
            bad.append(Skipped(where, exc.reason))
    if not documents and not bad:
        raise _Skip("empty", unread=False)
    return documents, bad


def _record_document(record: Any, *, source: str) -> Document:
    """Validate one ``{id?, title?, text, url?}`` record and build its Document."""
    if not isinstance(record, dict):
        raise _Skip(f"record is not an object (got {type(record).__name__})")
    text = record.get("text")
    if not isinstance(text, str):
        raise _Skip("missing 'text'" if text is None else f"'text' must be a string, not {type(text).__name__}")
    for key in ("title", "url"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise _Skip(f"{key!r} must be a string, not {type(record[key]).__name__}")
    if record.get("url") is not None and (problem := url_problem(record["url"])) is not None:
        raise _Skip(f"'url' {problem}")
    doc_id = record.get("id")
    if doc_id is None:
        cleaned = clean_text(text)
        doc_id = "doc-" + hashlib.sha256(cleaned.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    elif isinstance(doc_id, bool) or not isinstance(doc_id, str | int):
        raise _Skip(f"'id' must be a string, not {type(doc_id).__name__}")
    doc_id = str(doc_id).strip()
    if not doc_id:
        raise _Skip("empty 'id'")
    return _make_document(doc_id, text, title=record.get("title"), url=record.get("url"), source=source)
