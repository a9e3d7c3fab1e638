"""Loaders: every supported format, every kind of bad file (skipped, never raised), doc_id rules."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pypdf
import pytest

from rag.loading import LoadReport, Skipped, documents_from_records, load_paths

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
AR = "تستضيف القمة العالمية للحكومات في دبي أكثر من 4000 مشارك من 140 دولة."
EN = "The World Government Summit is held in Dubai every February."


def _pdf_bytes(text: str) -> bytes:
    """A minimal one-page PDF whose content stream draws ``text`` (ASCII) in Helvetica."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"),
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _blank_pdf(path: Path) -> None:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=612, height=792)
    with path.open("wb") as fh:
        writer.write(fh)


def _by_id(report: LoadReport) -> dict[str, object]:
    return {d.doc_id: d for d in report.documents}


def _reasons(report: LoadReport) -> dict[str, str]:
    return {Path(s.path).name: s.reason for s in report.skipped}


# --- formats ------------------------------------------------------------------------------------


def test_txt_is_cleaned_and_titled(tmp_path: Path) -> None:
    (tmp_path / "news.txt").write_text(
        f"Search\nClose this search box.\n\nالقمة العالمية للحكومات 2024  \n\n{AR}\r\nشارك\nFacebook\n\nRecent Post\n",
        encoding="utf-8",
    )
    report = load_paths([tmp_path])
    assert report.skipped == []
    [doc] = report.documents
    assert doc.doc_id == "news"
    assert doc.title == "القمة العالمية للحكومات 2024"
    assert doc.text == f"القمة العالمية للحكومات 2024\n\n{AR}"
    assert doc.source == str(tmp_path / "news.txt")
    assert doc.url is None


def test_bom_and_utf16_with_bom_are_decoded(tmp_path: Path) -> None:
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + AR.encode())
    (tmp_path / "wide.txt").write_bytes(AR.encode("utf-16"))  # with BOM
    docs = _by_id(load_paths([tmp_path]))
    assert docs["bom"].text == AR and not docs["bom"].text.startswith("\ufeff")
    assert docs["wide"].text == AR


def test_markdown_heading_is_title_and_text_kept(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text(f"# دليل القمة\n\n{EN}\n\n- item one\n", encoding="utf-8")
    [doc] = load_paths([tmp_path / "guide.md"]).documents
    assert doc.doc_id == "guide"
    assert doc.title == "دليل القمة"
    assert doc.text == f"# دليل القمة\n\n{EN}\n\n- item one"


def test_html_main_text_without_scripts_or_nav(tmp_path: Path) -> None:
    body = " ".join([AR] * 4)
    html = f"""<!DOCTYPE html><html lang="ar"><head><meta charset="utf-8">
    <title>القمة العالمية للحكومات</title><script>var secret = "SCRIPT_TEXT";</script>
    <style>body {{ color: red }}</style></head><body>
    <nav><ul><li><a href="/">الرئيسية</a></li><li><a href="/en">English</a></li></ul></nav>
    <article><h1>القمة العالمية للحكومات</h1><p>{body}</p><p>{EN}</p>
    <table><tr><th>السنة</th><th>المشاركون</th></tr><tr><td>2024</td><td>4000</td></tr></table></article>
    <footer>© 2024 All rights reserved</footer></body></html>"""
    (tmp_path / "page.html").write_text(html, encoding="utf-8")
    [doc] = load_paths([tmp_path]).documents
    assert doc.doc_id == "page"
    assert AR in doc.text and EN in doc.text
    assert "4000" in doc.text  # tables included
    assert "SCRIPT_TEXT" not in doc.text and "color: red" not in doc.text
    assert "الرئيسية" not in doc.text
    assert doc.title == "القمة العالمية للحكومات"


@pytest.mark.parametrize("depth", [500, 5000])
def test_html_deeply_nested_divs(tmp_path: Path, depth: int) -> None:
    html = (
        "<html><head><title>Deep page</title><script>var x = 'SCRIPT_TEXT';</script></head><body>"
        "<nav><a href='/'>Home</a></nav>" + "<div>" * depth + f"<p>{AR}</p><p>{EN}</p>" + "</div>" * depth + "</body></html>"
    )
    (tmp_path / "deep.htm").write_text(html, encoding="utf-8")
    report = load_paths([tmp_path])
    [doc] = report.documents
    assert AR in doc.text and EN in doc.text
    assert "SCRIPT_TEXT" not in doc.text
    assert doc.title == "Deep page"


def test_html_in_declared_legacy_charset(tmp_path: Path) -> None:
    html = f'<html><head><meta charset="windows-1256"><title>t</title></head><body><p>{AR}</p></body></html>'
    (tmp_path / "legacy.html").write_bytes(html.encode("cp1256"))
    [doc] = load_paths([tmp_path]).documents
    assert AR in doc.text


def test_pdf_with_text_layer(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(_pdf_bytes("Annual report of the World Government Summit"))
    report = load_paths([tmp_path])
    assert report.skipped == []
    [doc] = report.documents
    assert doc.doc_id == "report"
    assert "Annual report of the World Government Summit" in doc.text
    assert doc.title.startswith("Annual report")


def test_pdf_pages_are_joined_with_blank_lines(tmp_path: Path) -> None:
    writer = pypdf.PdfWriter()
    for text in ("First page text here", "Second page text here"):
        page_pdf = tmp_path / "one.pdf"
        page_pdf.write_bytes(_pdf_bytes(text))
        writer.append(str(page_pdf))
    page_pdf.unlink()
    with (tmp_path / "two.pdf").open("wb") as fh:
        writer.write(fh)
    [doc] = load_paths([tmp_path]).documents
    assert doc.text == "First page text here\n\nSecond page text here"


def test_pdf_without_text_layer_is_skipped(tmp_path: Path) -> None:
    _blank_pdf(tmp_path / "scan.pdf")
    (tmp_path / "ok.txt").write_text(AR, encoding="utf-8")
    report = load_paths([tmp_path])
    assert [d.doc_id for d in report.documents] == ["ok"]
    assert report.skipped == [Skipped(str(tmp_path / "scan.pdf"), "no text layer")]


def test_corrupt_pdf_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    report = load_paths([tmp_path])
    assert report.documents == []
    [skipped] = report.skipped
    assert skipped.reason  # some readable reason, and no exception


def test_jsonl_good_and_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {
                "id": "a1",
                "title": "عنوان أول",
                "text": AR,
                "url": "https://example.com/a1",
            },
            ensure_ascii=False,
        ),
        "{not json",
        "",
        json.dumps({"id": "b2", "text": f"Search\n{EN}"}),
        json.dumps({"id": "c3", "text": "   "}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "d4"}),
        json.dumps({"text": "No id given, so one is derived from the text."}),
    ]
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = load_paths([tmp_path])
    docs = _by_id(report)
    assert list(docs)[:2] == ["a1", "b2"]
    assert docs["a1"].title == "عنوان أول" and docs["a1"].url == "https://example.com/a1"
    assert docs["b2"].text == EN and docs["b2"].title == EN  # cleaned, title derived
    assert len(docs) == 3 and list(docs)[2].startswith("doc-")
    skipped = {s.path: s.reason for s in report.skipped}
    assert set(skipped) == {f"{path}:2", f"{path}:5", f"{path}:6", f"{path}:7"}
    assert skipped[f"{path}:2"].startswith("invalid JSON")
    assert skipped[f"{path}:5"] == "empty"
    assert "not an object" in skipped[f"{path}:6"]
    assert "text" in skipped[f"{path}:7"]


# --- bad files in a folder: each skipped with a reason, the rest still load ----------------------


def test_bad_files_are_skipped_and_the_rest_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "good.txt").write_text(AR, encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9 au lait " * 2)
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (tmp_path / "controls.txt").write_bytes(b"\x01\x02\x03\x04abc\x05\x06\x07\x08" * 10)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.md").write_text("  \n\n\t\n", encoding="utf-8")
    (tmp_path / "chrome.txt").write_text("Search\nMenu\nFacebook\nTwitter\nEnglish\n", encoding="utf-8")
    (tmp_path / "big.txt").write_text("x" * 5000, encoding="utf-8")
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04")
    with caplog.at_level(logging.WARNING, logger="rag.loading"):
        report = load_paths([tmp_path], max_file_bytes=4096)
    assert [d.doc_id for d in report.documents] == ["good"]
    reasons = _reasons(report)
    assert reasons == {
        "big.txt": "too large (5000 bytes > 4096 byte limit)",
        "blank.md": "empty",
        "chrome.txt": "empty",
        "controls.txt": "binary file",
        "empty.txt": "empty",
        "image.txt": "binary file",
        "latin1.txt": "not valid UTF-8 (byte 0xe9 at offset 3)",
        "notes.docx": "unsupported file type '.docx'",
    }
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == len(reasons)


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.txt").write_text(AR, encoding="utf-8")
    (tmp_path / "locked.txt").write_text(EN, encoding="utf-8")
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    report = load_paths([tmp_path])
    assert [d.doc_id for d in report.documents] == ["a"]
    assert _reasons(report) == {"locked.txt": "unreadable: Permission denied"}


def test_missing_path_and_broken_symlink(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    report = load_paths([tmp_path / "missing.txt", tmp_path / "dir"])
    assert report.documents == []
    assert _reasons(report) == {
        "missing.txt": "not found",
        "dangling.txt": "not a regular file",
    }


# --- doc_id rules -------------------------------------------------------------------------------


def test_doc_ids_relative_sorted_hidden_skipped(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "b.txt").write_text(f"B {EN}", encoding="utf-8")
    (root / "a.md").write_text(f"A {EN}", encoding="utf-8")
    (root / "sub" / "name.txt").write_text(AR, encoding="utf-8")
    (root / "sub" / "deeper" / "x.v2.txt").write_text(AR, encoding="utf-8")
    (root / ".hidden.txt").write_text(AR, encoding="utf-8")
    (root / ".git" / "config.txt").write_text(AR, encoding="utf-8")
    report = load_paths([root, root / "sub" / "name.txt"])
    ids = [d.doc_id for d in report.documents]
    assert ids == ["a", "b", "sub/deeper/x.v2", "sub/name", "name"]
    assert report.skipped == []
    assert load_paths([str(root)]).documents == report.documents[:4]  # str paths, deterministic


def test_duplicate_doc_ids_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "same.md").write_text(f"# One\n{EN}", encoding="utf-8")
    (tmp_path / "same.txt").write_text(AR, encoding="utf-8")
    report = load_paths([tmp_path])
    assert [(d.doc_id, d.title) for d in report.documents] == [("same", "One")]
    [skipped] = report.skipped
    assert skipped.path == str(tmp_path / "same.txt") and "duplicate doc_id 'same'" in skipped.reason


# --- API records --------------------------------------------------------------------------------


def test_control_characters_and_unaddressable_ids_never_reach_the_index(tmp_path: Path) -> None:
    records = [
        {"id": "ctl", "title": "T\x00itle\x1b]0;X\x07", "text": "Paris\x00 is the capital.\x1b[31m\x0cNext page.\tTabbed."},
        {"id": "bad\nid", "text": "A record whose id would split a citation line."},
        {"id": "../../health", "text": "A record whose source link would resolve to /health."},
        {"id": "faq/./hours", "text": "A dot segment in the middle."},
        {"id": "v1.2/notes..txt", "text": "Dots inside a segment are fine."},
        {"id": "bidi", "title": "Invoice \u202egnp.exe\u202c report", "text": "\u202eOverride\u202c heading\n\nBody \u202eat 8 am\u202c."},
        {"id": "bidi-derived", "text": "\u202eOverride\u202c heading\n\nBody."},
    ]
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    (tmp_path / "new\nline.txt").write_text("A file name with a newline.", encoding="utf-8")
    report = load_paths([tmp_path])
    docs = _by_id(report)
    assert list(docs) == ["ctl", "v1.2/notes..txt", "bidi", "bidi-derived"]
    # a title shows no bidi override ("Invoice exe.png report"); the text keeps its marks as stored
    assert docs["bidi"].title == "Invoice gnp.exe report" and "\u202eat 8 am\u202c" in docs["bidi"].text
    assert docs["bidi-derived"].title == "Override heading"
    # escape sequences lose their ESC and are harmless text; a form feed (PDF page break) is a line break
    assert docs["ctl"].text == "Paris is the capital.[31m\nNext page.\tTabbed."
    assert docs["ctl"].title == "Title]0;X"
    skipped = {s.path: s.reason for s in report.skipped}
    assert "control character" in skipped[f"{tmp_path / 'r.jsonl'}:2"]
    assert "path segment" in skipped[f"{tmp_path / 'r.jsonl'}:3"] and "path segment" in skipped[f"{tmp_path / 'r.jsonl'}:4"]
    assert "control character" in skipped[str(tmp_path / "new\nline.txt")]


def test_documents_from_records() -> None:
    records = [
        {
            "id": "r1",
            "title": "  A   title ",
            "text": f"English\n{AR}\nFacebook",
            "url": "https://e.com/r1",
        },
        {"text": f"{EN}\n\nMore."},
        {"id": "r3", "text": "\n \n"},
        {"id": "r4", "text": 42},
        "not a dict",
        {"id": "r1", "text": EN},
        {"id": "r6", "text": "bad \ud800 surrogate"},
    ]
    report = documents_from_records(records)
    first, second = report.documents
    assert (first.doc_id, first.title, first.text, first.url, first.source) == (
        "r1",
        "A title",
        AR,
        "https://e.com/r1",
        "api",
    )
    assert second.doc_id.startswith("doc-") and len(second.doc_id) == 16
    assert second.title == EN
    assert documents_from_records([{"text": f"{EN}\n\nMore.  "}]).documents[0].doc_id == second.doc_id  # stable
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons["records[2]"] == "empty"
    assert "must be a string" in reasons["records[3]"]
    assert "not an object" in reasons["records[4]"]
    assert "duplicate doc_id 'r1'" in reasons["records[5]"]
    assert "not valid Unicode" in reasons["records[6]"]


# --- the real corpus ----------------------------------------------------------------------------


def test_real_corpus() -> None:
    report = load_paths([CORPUS])
    assert report.skipped == []
    assert [d.doc_id for d in report.documents] == sorted(p.stem for p in CORPUS.glob("*.txt"))
    assert len(report.documents) == 5
    banned = {
        "Search",
        "Close this search box.",
        "Facebook",
        "Twitter",
        "LinkedIn",
        "Recent Post",
        "English",
        "شارك المقالة",
    }
    for doc in report.documents:
        assert doc.title.strip()
        assert not banned & {line.strip() for line in doc.text.split("\n")}
        assert "\n\n\n" not in doc.text
    docs = _by_id(report)
    assert docs["002_37161d73928ee183"].title.startswith("مُنتدى الخدمات الحكومية يَكشف")
    assert docs["003_b0a37f346d6f56bb"].title.startswith("القمة الحكومية تستضيف اجتماعين")
    assert "07 فبراير 2014" in docs["003_b0a37f346d6f56bb"].text


def test_html_cleaning_dependency_is_declared_directly() -> None:
    """Regression (issue 13, bug 6): lxml's html_clean arrived only through justext, and a venv
    made with an older pip skipped every .html file; the project now declares it itself."""
    import re
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("-", "_") for d in pyproject["project"]["dependencies"]}
    assert "lxml_html_clean" in names
    import lxml_html_clean  # noqa: F401 - and it is installed
