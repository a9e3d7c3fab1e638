"""The helpdesk widget (api/static/widget.js) in a real headless Chromium, against real
``rag serve`` processes on temporary indexes of the default corpus: one with the sentence reader
(the fast mode, whose answers carry a factoid ``focus``) plus one hostile document, one with the
default span reader (short answers with their ``sentence``).

Needs Debian's ``chromium`` at /usr/bin/chromium (driven by the Python ``playwright`` package;
no browser download). Screenshots of the open widget go to ``test-output/`` (git-ignored);
``docs/widget-ar.png`` and ``docs/widget-en.png`` in the README are copies of the span reader's
(``test_short_answer_first_with_the_span_reader``).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

pytest.importorskip("playwright.sync_api")  # an optional test tool (dev extra)
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from rag.evaluation.bench import free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

AR_QUESTION = "كم عدد المتحدثين في منتدى تبادل الخبرات الحكومية؟"
EN_QUESTION = "Who is the CEO of TMRW among the forum speakers?"
EN_SECOND_QUESTION = "Since what year has the UAE been the region's first e-government?"
# Questions about the corpus's topic that it cannot answer (the summit in 2040); the test first
# asserts that the service itself abstains, then how the widget shows it.
EN_UNANSWERABLE = "Who will host the World Government Summit in 2040?"
AR_UNANSWERABLE = "من سيستضيف القمة العالمية للحكومات في عام 2040؟"
AR_ABSTAIN = "لم أجد الإجابة في الوثائق المتاحة."
EN_ABSTAIN = "I couldn't find this in the documents."
HELPFUL = {"ltr": "Was this helpful?", "rtl": "هل كانت الإجابة مفيدة؟"}

# A document whose title and text carry markup that would run script if inserted as HTML.
HOSTILE_MARKUP = '<img src=x onerror="window.__xss=1">'
HOSTILE_DOC = {
    "id": "security-notice",
    "title": f"Helpdesk security notice {HOSTILE_MARKUP}",
    "text": f"The helpdesk security notice says that the markup {HOSTILE_MARKUP} must always be shown as plain text.\n"
    "The helpdesk office opens at 9 am on weekdays and closes at 5 pm.\n",
    # The API refuses non-http(s) URLs and whitespace in them (tests/test_hardening.py); an http
    # URL carrying markup must still become a plain link attribute, never HTML.
    "url": 'https://example.org/notice?q="><img/src=x/onerror=window.__xss=1>',
}
ADMIN_TOKEN = "widget-test-admin-token"
HOSTILE_QUESTION = "What does the helpdesk security notice say?"

# shadowRoot of the widget; playwright's CSS locators pierce open shadow roots, but some checks
# (active element, element counts) are plain DOM questions.
SHADOW = "document.querySelector('rag-helpdesk').shadowRoot"


@contextmanager
def serving(work: Path, corpus_index: Path, reader: str) -> Iterator[tuple[str, Callable[[str], None]]]:
    """``rag serve`` with ``reader`` on a free loopback port over a copy of the corpus index:
    (base URL, a function that fails the test with the server's log)."""
    shutil.copytree(corpus_index, work / "index")
    port = free_port()
    env = {
        **os.environ,
        "RAG_INDEX": str(work / "index"),
        "RAG_ADMIN_TOKEN": ADMIN_TOKEN,
        "RAG_API_KEYS": "",
        "RAG_RATE_LIMIT_PER_MINUTE": "0",
        "RAG_READER": reader,
    }
    log = (work / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def fail(why: str) -> None:
        pytest.fail(f"rag serve {why}:\n{(work / 'serve.log').read_text()[-3000:]}")

    try:
        deadline = time.monotonic() + 180  # loading the model takes a few seconds
        while True:
            if proc.poll() is not None:
                fail(f"exited with {proc.returncode}")
            try:
                if httpx.get(base + "/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                fail("is not ready")
            time.sleep(0.3)
        yield base, fail
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, corpus_index: Path) -> Iterator[str]:
    """Base URL of ``rag serve`` with the sentence reader (these flows assert its answers'
    sentences and focus marks), with the hostile document added through the admin route."""
    with serving(tmp_path_factory.mktemp("widget"), corpus_index, "sentence") as (base, fail):
        r = httpx.post(base + "/documents", json=HOSTILE_DOC, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120)
        if r.status_code != 200:
            fail(f"refused the hostile document ({r.status_code} {r.text})")
        yield base


@pytest.fixture(scope="session")
def span_server(tmp_path_factory: pytest.TempPathFactory, corpus_index: Path) -> Iterator[str]:
    """Base URL of ``rag serve`` with the default span reader (short answers + sentence)."""
    with serving(tmp_path_factory.mktemp("widget-span"), corpus_index, "span") as (base, _):
        yield base


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


MOBILE = {"width": 390, "height": 844}


@contextmanager
def demo_page(browser: Browser, server: str, viewport: dict[str, int] | None = None) -> Iterator[Page]:
    """The demo page of ``server`` in a fresh context (fresh sessionStorage), failing on any
    page error and on any HTTP error response the page did not cause on purpose."""
    context = browser.new_context(viewport=viewport or {"width": 1000, "height": 720}, device_scale_factor=1)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # console errors include CSP violations; failed requests (the aborted /ask, a routed 404) do not count
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None)
    # the page itself loads without a single 4xx/5xx (no /favicon.ico 404 either)
    load_errors: list[str] = []
    pg.on("response", lambda r: load_errors.append(f"{r.status} {r.url}") if r.status >= 400 and r.request.resource_type != "fetch" else None)
    pg.goto(server + "/")
    pg.wait_for_function("customElements.get('rag-helpdesk') && document.querySelector('rag-helpdesk')")
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"page errors: {errors}"
    assert not load_errors, f"failed loads: {load_errors}"


@pytest.fixture()
def page(browser: Browser, server: str) -> Iterator[Page]:
    with demo_page(browser, server) as pg:
        yield pg


def api_ask(server: str, question: str) -> dict:
    r = httpx.post(server + "/ask", json={"question": question}, timeout=120)
    r.raise_for_status()
    return r.json()


def short_answer(answer: dict) -> str:
    """What the widget shows first: the span reader's span (an answer with a ``sentence``), the
    sentence reader's factoid (``focus``), else the whole sentence."""
    return (answer.get("focus") or answer)["text"] if not answer.get("sentence") else answer["text"]


def sentence_of(answer: dict) -> str:
    """The sentence the short answer stands in (behind "Show the sentence")."""
    return (answer.get("sentence") or answer)["text"]


def show_sentence(reply):
    """Expand the answer's sentence and return it (a locator), checking the toggle's state."""
    toggle = reply.locator(".context-toggle")
    context = reply.locator(".answer-context")
    expect(context).to_be_hidden()
    assert toggle.get_attribute("aria-expanded") == "false"
    assert toggle.get_attribute("aria-controls") == context.get_attribute("id")
    toggle.click()
    expect(context).to_be_visible()
    assert toggle.get_attribute("aria-expanded") == "true"
    return context


def containing_citation(result: dict, start: int, end: int) -> int | None:
    """1-based number of the first citation holding [start, end) of the answer's document."""
    doc = result["answer"]["doc_id"]
    for i, c in enumerate(result["citations"]):
        if c["doc_id"] == doc and c["start"] <= start and c["end"] >= end:
            return i + 1
    return None


def open_panel(page: Page) -> None:
    page.locator("rag-helpdesk .launcher").click()
    expect(page.locator("rag-helpdesk [role=dialog]")).to_be_visible()


def ask(page: Page, question: str, n: int = 1):
    """Type ``question``, press Enter, and return the ``n``-th bot reply bubble."""
    page.locator("rag-helpdesk textarea").fill(question)
    page.locator("rag-helpdesk textarea").press("Enter")
    reply = page.locator("rag-helpdesk .msg.bot[data-kind]").nth(n - 1)
    reply.wait_for()
    return reply


def to_english(page: Page) -> None:
    """Switch the host page to English, as a bilingual site does; the widget follows <html lang>."""
    page.evaluate("document.documentElement.lang = 'en'; document.documentElement.dir = 'ltr'")
    expect(page.locator("rag-helpdesk h2")).to_have_text("Help")


def screenshot(page: Page, name: str) -> Path:
    """The open widget with a margin of the host page around it, as PNG under test-output/."""
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    boxes = [page.locator(f"rag-helpdesk {s}").bounding_box() for s in (".panel", ".launcher")]
    x0 = max(0, min(b["x"] for b in boxes) - 40)
    y0 = max(0, min(b["y"] for b in boxes) - 24)
    x1 = min(page.viewport_size["width"], max(b["x"] + b["width"] for b in boxes) + 40)
    y1 = min(page.viewport_size["height"], max(b["y"] + b["height"] for b in boxes) + 16)
    page.screenshot(path=str(path), clip={"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0})
    assert path.stat().st_size > 10_000  # a rendered widget, not a blank image
    return path


def focused_class(page: Page) -> str | None:
    return page.evaluate(f"(() => {{ const a = {SHADOW}.activeElement; return a ? (a.className || a.tagName) : null; }})()")


def test_widget_script_is_small_and_self_contained(server: str) -> None:
    r = httpx.get(server + "/widget.js", timeout=10)
    assert r.status_code == 200
    assert "javascript" in r.headers["content-type"]
    assert len(r.content) < 60_000
    # nothing loaded from elsewhere: the only URLs it names are the embed example and the SVG namespace
    urls = set(re.findall(r"https?://[^\s\"'`)]+", r.text))
    assert urls <= {"https://your-rag-host/widget.js", "https://your-rag-host", "http://www.w3.org/2000/svg"}, urls
    assert "import(" not in r.text and "importScripts" not in r.text
    page = httpx.get(server + "/", timeout=10).text
    assert '<script src="/widget.js" defer></script>' in page  # the demo embeds it like a customer


def test_arabic_question_answer_highlight_citation_and_keyboard(page: Page, server: str) -> None:
    expected = api_ask(server, AR_QUESTION)
    a = expected["answer"]
    assert expected["language"] == "ar" and a is not None and "28" in a["text"]

    launcher = page.locator("rag-helpdesk .launcher")
    assert launcher.get_attribute("aria-expanded") == "false"
    open_panel(page)
    dialog = page.locator("rag-helpdesk [role=dialog]")
    assert dialog.get_attribute("aria-modal") == "true"
    assert dialog.get_attribute("dir") == "rtl"  # the demo page is <html lang="ar">
    expect(page.locator("rag-helpdesk h2")).to_have_text("المساعدة")
    assert launcher.get_attribute("aria-expanded") == "true"
    assert focused_class(page) == "TEXTAREA"  # focus moves into the dialog

    # Shift+Enter is a newline, not a send
    box = page.locator("rag-helpdesk textarea")
    box.type("سطر")
    box.press("Shift+Enter")
    assert box.input_value() == "سطر\n"
    assert page.locator("rag-helpdesk .msg.user").count() == 0

    reply = ask(page, AR_QUESTION)
    user = page.locator("rag-helpdesk .msg.user").first
    assert user.get_attribute("dir") == "rtl"
    expect(user).to_contain_text(AR_QUESTION)
    assert reply.get_attribute("data-kind") == "answer"
    assert reply.get_attribute("dir") == "rtl" and reply.get_attribute("lang") == "ar"
    # the short answer (the factoid) first; the sentence behind a toggle, the factoid marked in it
    short = reply.locator(".answer-short")
    assert short.get_attribute("dir") == "rtl"
    assert short.text_content() == short_answer(a) == a["focus"]["text"]
    context = show_sentence(reply)
    assert context.text_content() == a["text"]
    expect(context.locator("mark")).to_have_text(a["focus"]["text"])
    expect(reply.locator(".source-link")).to_have_text(f"المصدر [{containing_citation(expected, a['start'], a['end'])}]")
    expect(reply.locator(".citations h3")).to_have_text("المصادر")
    cites = reply.locator(".cite")
    assert cites.count() == len(expected["citations"])
    # the citation holding the answer shows the factoid highlighted in its snippet
    holder = reply.locator(".cite.has-answer").first
    expect(holder.locator(".cite-snippet mark")).to_have_text(a["focus"]["text"])
    screenshot(page, "widget-ar-sentence-reader.png")

    # the focus trap: Tab and Shift+Tab never leave the dialog
    for key in ["Tab"] * 12 + ["Shift+Tab"] * 12:
        page.keyboard.press(key)
        inside = page.evaluate(f"{SHADOW}.querySelector('[role=dialog]').contains({SHADOW}.activeElement)")
        assert inside, f"focus left the dialog after {key}"

    # open the citation: the source view shows the passage with the answer span marked
    holder.click()
    source = page.locator("rag-helpdesk .source")
    expect(source).to_be_visible()
    expect(source.locator(".passage mark")).to_have_text(a["text"])
    expect(source.locator("h3")).to_have_text(a["title"])
    assert source.locator(".passage").get_attribute("dir") == "rtl"
    screenshot(page, "widget-ar-source.png")
    # Escape leaves the source view first (focus back on the citation), then closes the panel
    page.keyboard.press("Escape")
    expect(source).to_be_hidden()
    assert "cite" in (focused_class(page) or "")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert launcher.get_attribute("aria-expanded") == "false"
    assert focused_class(page) == "launcher"

    # the conversation survives a reload (sessionStorage)
    page.reload()
    open_panel(page)
    expect(page.locator("rag-helpdesk .msg.user")).to_have_count(1)
    expect(page.locator("rag-helpdesk .answer-short")).to_have_text(a["focus"]["text"])


def test_english_question_localises_and_sets_direction(page: Page, server: str) -> None:
    expected = api_ask(server, EN_QUESTION)
    a = expected["answer"]
    assert expected["language"] == "en" and a is not None and "TMRW" in a["text"]

    to_english(page)
    open_panel(page)
    dialog = page.locator("rag-helpdesk [role=dialog]")
    assert dialog.get_attribute("dir") == "ltr"
    assert page.locator("rag-helpdesk textarea").get_attribute("placeholder") == "Ask a question…"
    assert page.locator("rag-helpdesk").get_attribute("data-side") == "right"  # follows the UI direction

    reply = ask(page, EN_QUESTION)
    assert page.locator("rag-helpdesk .msg.user").first.get_attribute("dir") == "ltr"
    assert reply.get_attribute("dir") == "ltr" and reply.get_attribute("lang") == "en"
    expect(reply.locator(".citations h3")).to_have_text("Sources")
    # the corpus is Arabic: the short answer keeps its own right-to-left direction
    short = reply.locator(".answer-short")
    assert short.get_attribute("dir") == "rtl"
    assert short.text_content() == a["focus"]["text"]
    # The 1,036-character sentence spans chunks, so no citation holds all of it; the link still
    # names the citation holding the short answer, and opens the answer's offsets.
    assert containing_citation(expected, a["start"], a["end"]) is None
    n = containing_citation(expected, a["focus"]["start"], a["focus"]["end"])
    link = reply.locator(".source-link")
    expect(link).to_have_text(f"Source [{n}]")
    context = show_sentence(reply)
    assert context.get_attribute("dir") == "rtl" and context.text_content() == a["text"]
    link.click()
    expect(page.locator("rag-helpdesk .source .passage mark")).to_have_text(a["text"])
    page.locator("rag-helpdesk .back").click()
    expect(page.locator("rag-helpdesk .source")).to_be_hidden()
    expect(reply).to_be_visible()

    reply.locator(".cite.has-answer").first.click()
    expect(page.locator("rag-helpdesk .source .passage mark")).to_have_text(a["text"])
    page.locator("rag-helpdesk .back").click()
    expect(reply).to_be_visible()

    # a second turn (with a short factoid answer)
    second = api_ask(server, EN_SECOND_QUESTION)["answer"]
    assert second is not None
    reply2 = ask(page, EN_SECOND_QUESTION, n=2)
    assert reply2.locator(".answer-short").text_content() == second["focus"]["text"]
    expect(show_sentence(reply2).locator("mark")).to_have_text(second["focus"]["text"])
    expect(page.locator("rag-helpdesk .msg.user")).to_have_count(2)
    screenshot(page, "widget-en-sentence-reader.png")


@pytest.mark.parametrize(
    ("question", "message", "direction"),
    [(EN_UNANSWERABLE, EN_ABSTAIN, "ltr"), (AR_UNANSWERABLE, AR_ABSTAIN, "rtl")],
    ids=["en", "ar"],
)
def test_abstention_is_shown_in_the_question_language(page: Page, server: str, question: str, message: str, direction: str) -> None:
    result = api_ask(server, question)
    assert result["answerable"] is False and result["answer"] is None
    open_panel(page)  # Arabic UI: the message still follows the question's language
    reply = ask(page, question)
    assert reply.get_attribute("data-kind") == "abstain"
    expect(reply.locator(".abstain-text")).to_have_text(message)
    assert reply.get_attribute("dir") == direction
    assert reply.locator("mark").count() == 0
    # an abstention can be rated too, in the question's language
    expect(reply.locator(".feedback")).to_have_accessible_name(HELPFUL[direction])


def test_hostile_document_renders_as_text(page: Page, server: str) -> None:
    result = api_ask(server, HOSTILE_QUESTION)
    assert result["answer"] is not None and HOSTILE_MARKUP in result["answer"]["text"]
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    to_english(page)
    open_panel(page)
    reply = ask(page, HOSTILE_QUESTION)
    sentence = show_sentence(reply) if reply.locator(".context-toggle").count() else reply.locator(".answer-text")
    assert sentence.get_attribute("dir") == "ltr"  # an English sentence
    expect(sentence).to_contain_text(HOSTILE_MARKUP)
    expect(reply.locator(".cite-title").first).to_contain_text("<img src=x")
    reply.locator(".cite.has-answer").first.click()
    source = page.locator("rag-helpdesk .source")
    expect(source.locator(".passage mark")).to_contain_text(HOSTILE_MARKUP)
    expect(source.locator("h3")).to_contain_text("<img src=x")
    link = page.locator("rag-helpdesk .source a")
    assert link.count() == 1 and link.get_attribute("href") == HOSTILE_DOC["url"]
    page.wait_for_timeout(300)  # an injected <img> would have fired onerror by now

    # The element checks are the ones that matter: the demo page's CSP would block an inline
    # onerror handler anyway, but a customer's page may have no CSP at all.
    assert page.evaluate(f"{SHADOW}.querySelectorAll('img').length") == 0
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert not [u for u in requests if u.rstrip("/").endswith("/x")]


def test_loading_state_then_unreachable_service_offers_retry(page: Page, server: str) -> None:
    to_english(page)
    held: list = []
    page.route("**/ask", lambda route: held.append(route))  # hold the request: the widget must show it is working
    open_panel(page)
    page.locator("rag-helpdesk textarea").fill(EN_QUESTION)
    page.locator("rag-helpdesk textarea").press("Enter")
    expect(page.locator("rag-helpdesk .typing-msg")).to_be_visible()
    expect(page.locator("rag-helpdesk .panel > [role=status]")).to_have_text("Searching the documents…")
    expect(page.locator("rag-helpdesk .send")).to_be_hidden()  # the stop button takes its place
    expect(page.locator("rag-helpdesk .stop")).to_be_visible()
    assert page.locator("rag-helpdesk .log").get_attribute("aria-busy") == "true"

    held[0].abort("connectionrefused")  # the service is down
    reply = page.locator("rag-helpdesk .msg.bot[data-kind]").first
    expect(page.locator("rag-helpdesk .typing-msg")).to_have_count(0)
    assert reply.get_attribute("data-kind") == "error"
    expect(reply).to_contain_text("The help service can't be reached right now.")
    retry = reply.locator(".retry")
    expect(retry).to_have_text("Retry")

    page.unroute("**/ask")
    retry.click()  # the service is back
    answer = page.locator("rag-helpdesk .msg.answer")
    expect(answer).to_have_count(1)
    expect(page.locator("rag-helpdesk .msg.error")).to_have_count(0)
    expect(page.locator("rag-helpdesk .msg.user")).to_have_count(1)  # the retry is not a new question


CUSTOMER_PAGE = """<!doctype html><html lang="ar"><head><meta charset="utf-8">
<style>* {{ font-family: Georgia, serif !important; color: red; }} button {{ background: hotpink !important; }}</style>
</head><body><h1>Customer site</h1>
<script src="{api}/widget.js" data-api="{api}" data-lang="en" data-title="Support" data-accent="rgb(200, 30, 40)"
        data-position="bottom-left" data-api-key="k-123" defer></script>
</body></html>"""


@pytest.fixture()
def customer_site(server: str) -> Iterator[str]:
    """A page of another origin (its own loopback port) embedding the widget from ``server``.
    A real server rather than a routed fake: Chromium lets only loopback pages call loopback."""
    body = CUSTOMER_PAGE.format(api=server).encode()

    class CustomerPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), CustomerPage)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_one_line_embed_on_another_site(browser: Browser, server: str, customer_site: str) -> None:
    """The script tag on a page of another origin: options from its data attributes, requests
    cross-origin to data-api with the key header, and the page's CSS kept out of the widget."""
    context = browser.new_context(viewport={"width": 1000, "height": 720})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    seen: list[dict[str, str]] = []
    page.on("request", lambda r: seen.append(r.headers) if r.url == server + "/ask" else None)
    try:
        page.goto(customer_site)
        host = page.locator("rag-helpdesk")
        expect(host).to_have_attribute("data-side", "left")
        open_panel(page)
        expect(page.locator("rag-helpdesk h2")).to_have_text("Support")
        assert page.locator("rag-helpdesk [role=dialog]").get_attribute("dir") == "ltr"  # data-lang beats <html lang="ar">
        launcher = page.locator("rag-helpdesk .launcher")
        assert launcher.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(200, 30, 40)"
        font = page.locator("rag-helpdesk .panel").evaluate("el => getComputedStyle(el).fontFamily")
        assert "Georgia" not in font
        reply = ask(page, EN_QUESTION)
        assert reply.get_attribute("data-kind") == "answer"
        expect(show_sentence(reply)).to_contain_text("TMRW")
        assert seen and seen[-1].get("x-api-key") == "k-123"
        # the page follows its own language switch at runtime only where data-lang does not pin it
        page.evaluate("document.documentElement.lang = 'ar'")
        expect(page.locator("rag-helpdesk h2")).to_have_text("Support")
        page.evaluate("document.querySelector('rag-helpdesk').dataset.title = 'الدعم'")
        expect(page.locator("rag-helpdesk h2")).to_have_text("الدعم")
    finally:
        context.close()
    assert not errors, errors
