"""Consistency under change: concurrent clients query ``/ask`` and ``/search`` while an admin adds,
updates and deletes documents through the API. No query may fail, and every response must come
wholly from one index version: its body and ``X-Index-Version`` header agree, and every document
it cites existed in that version with exactly the cited text at the cited offsets.

Also consistency of offsets across stages: for any text (diacritics, tatweel, zero-width marks,
odd spaces), what the index stores and what search and answers cite slice the *original* text
exactly (text-layer properties are in ``tests/test_text.py`` and ``tests/test_chunking.py``)."""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from rag.answering import score_sentences
from rag.config import Settings
from rag.index import Index
from rag.ingest import Indexer
from rag.pipeline import RAG
from rag.reader.runtime import SpanReader
from rag.schema import Document
from rag.testing import WordHashEmbedder

ADMIN = "consistency-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}

# The documents the writer churns: "churn" is added, changed, deleted and added again, so the same
# id has different texts in different versions; an original document is deleted and restored.
FALCONS_A = {
    "id": "churn",
    "title": "Falcon hospital",
    "url": "https://example.org/falcons/a",
    "text": "The Abu Dhabi Falcon Hospital treats more than 11000 falcons every year. It opened in 1999.",
}
FALCONS_B = {
    "id": "churn",
    "title": "Falcon hospital",
    "url": "https://example.org/falcons/b",
    "text": "The Abu Dhabi Falcon Hospital treats more than 12500 falcons every year. Visits need a booking.",
}
PEARLS = {
    "id": "extra/pearls",
    "title": "الغوص على اللؤلؤ",
    "text": "كان الغوص على اللؤلؤ مصدر الرزق الأول لسكان الخليج قبل النفط. واستمر موسم الغوص الكبير أربعة أشهر.",
}
QUESTIONS = [
    "How many falcons does the Abu Dhabi Falcon Hospital treat every year?",
    "كم استمر موسم الغوص الكبير؟",
    "كم عدد النخيل في الإمارات؟",
    "When did UNESCO inscribe Arabic coffee?",
    "متى وصل مسبار الأمل إلى مدار المريخ؟",
]


@dataclass
class Seen:
    """One response a reader got, checked after all threads are done."""

    route: str
    status: int
    header_version: str | None
    body: dict = field(default_factory=dict)


def _texts_of(index) -> dict[str, tuple[str, str | None]]:
    return dict(zip(index.doc_ids, zip(index.texts, index.urls, strict=False), strict=False))


def _check_passage(p: dict, docs: dict[str, tuple[str, str | None]], where: str) -> list[str]:
    if p["doc_id"] not in docs:
        return [f"{where}: cites {p['doc_id']!r}, which is not in that version"]
    text, url = docs[p["doc_id"]]
    if text[p["start"] : p["end"]] != p["text"]:
        return [f"{where}: text of {p['doc_id']!r} at {p['start']}-{p['end']} is not what that version holds"]
    if "url" in p and p["url"] != url:
        return [f"{where}: url of {p['doc_id']!r} is {p['url']!r}, that version has {url!r}"]
    return []


def test_queries_during_updates_never_fail_and_never_mix_versions(small_index_copy, e5) -> None:
    # The fast sentence answering, so enough queries land on every short-lived version (with the
    # span reader a query takes ~10x longer and one of the churned texts could go unseen).
    rag = RAG(Settings(index=small_index_copy, reader="sentence"), embedder=e5)
    settings = Settings(index=small_index_copy, admin_token=ADMIN, api_keys="", rate_limit_per_minute=0, workers=4)
    app = create_app(settings, rag=rag)
    # version -> {doc_id: text}, filled by the single writer as each change lands
    versions: dict[int, dict[str, str]] = {rag.snapshot.index.version: _texts_of(rag.snapshot.index)}
    seen: list[Seen] = []
    ready_versions: list[list[int]] = []
    errors: list[str] = []
    done = threading.Event()
    lock = threading.Lock()

    with TestClient(app) as client:

        def reader(i: int) -> None:
            mine: list[int] = []
            n = 0
            try:
                while not done.is_set() or n < 4:
                    q = QUESTIONS[(i + n) % len(QUESTIONS)]
                    if n % 3 == 1:
                        r = client.get("/search", params={"q": q, "k": 5})
                        route = "search"
                    elif n % 3 == 2:
                        r = client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": q}]})
                        route = "chat"
                    else:
                        r = client.post("/ask", json={"question": q, "top_k": 5})
                        route = "ask"
                    s = Seen(
                        route,
                        r.status_code,
                        r.headers.get("x-index-version"),
                        r.json() if r.headers.get("content-type", "").startswith("application/json") else {},
                    )
                    ready = client.get("/ready")
                    with lock:
                        seen.append(s)
                    mine.append(ready.json()["index_version"] if ready.status_code == 200 else -1)
                    n += 1
            except Exception as exc:  # noqa: BLE001 - a transport failure is a failed query too
                with lock:
                    errors.append(f"reader {i}: {type(exc).__name__}: {exc}")
            with lock:
                ready_versions.append(mine)

        def write(method: str, url: str, json: dict | None = None) -> None:
            r = client.request(method, url, json=json, headers=AUTH)
            assert r.status_code == 200, r.text
            v = r.json()["index_version"]
            assert r.headers["x-index-version"] == str(v)
            # The only writer: until its next write, the live version is the one just made.
            live = rag.snapshot.index
            assert live.version == v
            versions[v] = _texts_of(live)
            assert (json["id"] in versions[v]) if method == "POST" else (url.removeprefix("/documents/") not in versions[v])

        readers = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
        for t in readers:
            t.start()
        try:
            time.sleep(0.5)
            palms = {
                "id": "ar_palms",
                "title": rag.snapshot.index.titles[rag.snapshot.index.doc_row["ar_palms"]],
                "text": versions[min(versions)]["ar_palms"][0],
            }
            for method, url, body in [
                ("POST", "/documents", FALCONS_A),
                ("POST", "/documents", PEARLS),
                ("POST", "/documents", FALCONS_B),  # same id, new text
                ("DELETE", "/documents/churn", None),
                ("DELETE", "/documents/ar_palms", None),  # an original document
                ("POST", "/documents", FALCONS_A),  # back, with its first text
                ("DELETE", "/documents/extra/pearls", None),
                ("POST", "/documents", palms),
            ]:
                write(method, url, body)
                time.sleep(0.2)  # let queries land on every version
        finally:
            done.set()
            for t in readers:
                t.join(timeout=300)

    print(
        f"\nconsistency: {len(seen)} queries ({', '.join(f'{r}: {sum(x.route == r for x in seen)}' for r in ('ask', 'search', 'chat'))}) "
        f"over versions {sorted({x.header_version for x in seen}, key=lambda v: int(v or -1))} during {len(versions) - 1} writes"
    )
    assert not errors, errors
    problems: list[str] = []
    for s in seen:
        where = f"{s.route} at version {s.header_version}"
        if s.status != 200:
            problems.append(f"{where}: HTTP {s.status} {s.body}")
            continue
        if s.route == "chat":  # the library result rides along; the citations carry the URLs
            s.body = {**s.body["rag"], "chat_citations": s.body["citations"]}
        v = s.body["index_version"]
        if s.header_version != str(v):
            problems.append(f"{s.route}: body says version {v}, header says {s.header_version}")
            continue
        docs = versions.get(v)
        if docs is None:
            problems.append(f"{where}: a version no write produced")
            continue
        passages = s.body["passages"] if s.route == "search" else s.body["citations"]
        for p in passages:
            problems += _check_passage(p, docs, where)
        if s.route != "search" and s.body["answer"] is not None:
            problems += _check_passage(s.body["answer"], docs, f"{where} (answer)")
        for c in s.body.get("chat_citations", []):
            problems += _check_passage(c, docs, f"{where} (chat citation)")
    assert not problems, problems[:10]

    # /ready reports the version, and for each client it only ever moves forward.
    for mine in ready_versions:
        assert -1 not in mine
        assert mine == sorted(mine)
    # The test meant something: queries were answered from most versions, and cited the churned
    # document in more than one of its texts.
    served = {s.body["index_version"] for s in seen}
    assert len(seen) >= 30 and len(served) >= 4, (len(seen), sorted(served))
    churn_texts = {
        versions[s.body["index_version"]]["churn"][0]
        for s in seen
        for p in (s.body["passages"] if s.route == "search" else s.body["citations"])
        if p["doc_id"] == "churn"
    }
    assert churn_texts == {FALCONS_A["text"], FALCONS_B["text"]}
    assert rag.snapshot.index.version == max(versions)


# --- offsets across stages, for any text ------------------------------------------------------


_piece = st.one_of(
    st.sampled_from(["القمة", "العالميـــة", "للحكومات", "مُدَرِّسٌ", "دبي", "٢٠١٨", "7.98", "İstanbul", "Summit", "cardamom"]),
    st.sampled_from([" ", " ", "\n", "\n\n", ". ", "؟ ", "، ", "\u00a0", "\u200b", "\u200f", "\ufeff", "\t"]),
    st.text(alphabet=st.characters(min_codepoint=0x0600, max_codepoint=0x06FF), min_size=1, max_size=8),
    st.text(min_size=1, max_size=5),
)
_doc_text = st.lists(_piece, min_size=1, max_size=60).map("".join).filter(lambda t: t.strip() and "\x00" not in t)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(texts=st.lists(_doc_text, min_size=1, max_size=3), pick=st.integers(min_value=0))
def test_property_stored_and_cited_offsets_slice_the_original_text(texts, pick) -> None:
    embedder = WordHashEmbedder()
    docs = [Document(f"d{i}", f"t{i}", t) for i, t in enumerate(texts)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "index"
        settings_ = Settings(index=root, chunk_tokens=12, chunk_overlap=3, reader="sentence")
        Indexer(root, embedder, settings_).ingest(docs)
        idx = Index.open(root)
        try:
            assert idx.verify() == []
            assert idx.texts == [d.text for d in docs if d.doc_id in idx.doc_row]  # stored as given, never normalised
            for row in range(idx.n_chunks):
                info = idx.chunk_info(row)
                assert idx.chunk_text(row) == idx.texts[info.doc_row][info.start : info.end]
                assert idx.chunk_text(row).strip()
            for row in range(idx.n_sentences):
                s = idx.sentence_text(row)
                assert s and s == s.strip()
        finally:
            idx.close()

        rag = RAG(settings_, embedder=embedder)
        doc = docs[pick % len(docs)]
        words = doc.text.split()
        question = " ".join(words[pick % len(words) :][:6]) or doc.text
        texts_by_id = {d.doc_id: d.text for d in docs}
        for p in rag.search(question, 5):
            assert texts_by_id[p.doc_id][p.start : p.end] == p.text
        result = rag.ask(question, 3)
        for c in result.citations:
            assert texts_by_id[c.doc_id][c.start : c.end] == c.text
        # The best sentence and its focus, whether or not the answer passes abstention.
        snap = rag.snapshot
        query = rag.analyse(question)
        passages = rag.rank(query, 5, snap.index)
        scored = score_sentences(snap.index, query, passages, rag.reader.weights)
        best = scored[0] if scored else None
        ans = rag.reader.read(query, passages, snap.index).answer
        if best is not None:
            s, e = int(snap.index.sentence_start[best.row]), int(snap.index.sentence_end[best.row])
            assert 0 <= s < e <= len(snap.index.texts[best.doc_row])
        # the span reader's short answer and its sentence slice the stored text too
        span = SpanReader.from_settings(Settings()).read(query, passages, snap.index)
        for cand in span.candidates:
            assert texts_by_id[cand.doc_id][cand.start : cand.end] == cand.text
            assert cand.sentence is not None and texts_by_id[cand.doc_id][cand.sentence.start : cand.sentence.end] == cand.sentence.text
        if ans is not None:
            assert texts_by_id[ans.doc_id][ans.start : ans.end] == ans.text
            if ans.focus is not None:
                assert ans.start <= ans.focus.start < ans.focus.end <= ans.end
                assert texts_by_id[ans.doc_id][ans.focus.start : ans.focus.end] == ans.focus.text
        snap.index.close()


# --- an update landing in the middle of one request ----------------------------------------------


def test_search_reports_the_version_it_searched_when_updates_land_during_it(small_index_copy, e5, monkeypatch) -> None:
    rag = RAG(Settings(index=small_index_copy), embedder=e5)
    app = create_app(Settings(index=small_index_copy, api_keys="", rate_limit_per_minute=0), rag=rag)
    search = rag.search
    n = 0

    def search_after_an_update(*args, **kwargs):
        # Another writer switches the live version just as the search starts, every time.
        nonlocal n
        n += 1
        rag.ingest_documents([Document(f"falcons-{n}", "Falcons", f"Falcon hospital report {n}: the hospital treats many falcons.")])
        return search(*args, **kwargs)

    monkeypatch.setattr(rag, "search", search_after_an_update)
    with TestClient(app) as client:
        r = client.get("/search", params={"q": "falcon hospital falcons", "k": 5})
    assert r.status_code == 200
    body = r.json()
    searched = body["index_version"]
    assert r.headers["x-index-version"] == str(searched)
    # Documents added after the version it reports cannot be among its passages.
    assert {p["doc_id"] for p in body["passages"]} <= {"ar_summit", "ar_space", "ar_palms", "en_coffee"} | {
        f"falcons-{i}" for i in range(1, searched)
    }


def test_chat_sources_come_from_the_version_that_answered(small_index_copy, e5, monkeypatch) -> None:
    rag = RAG(Settings(index=small_index_copy), embedder=e5)
    rag.ingest_documents([Document(FALCONS_A["id"], FALCONS_A["title"], FALCONS_A["text"], FALCONS_A["url"])])
    app = create_app(Settings(index=small_index_copy, api_keys="", rate_limit_per_minute=0), rag=rag)
    ask = rag.ask

    def ask_then_update(*args, **kwargs):
        result = ask(*args, **kwargs)
        # The page moved while the answer was being written up.
        rag.ingest_documents([Document(FALCONS_A["id"], FALCONS_A["title"], FALCONS_A["text"], "https://example.org/moved")])
        return result

    monkeypatch.setattr(rag, "ask", ask_then_update)
    with TestClient(app) as client:
        r = client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": QUESTIONS[0]}]})
    body = r.json()
    assert r.status_code == 200 and body["rag"]["answer"]["doc_id"] == "churn", body["rag"]["answer"]
    assert r.headers["x-index-version"] == str(body["rag"]["index_version"]) == "2"
    assert body["citations"][0]["url"] == FALCONS_A["url"]
    assert rag.snapshot.index.version == 3
