"""The README's `rag ask` examples are what the shipped reader answers over the default corpus,
so a new model or pipeline fit that changes them also changes the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.answering import NO_ANSWER

README = Path(__file__).resolve().parents[1] / "README.md"

# `$ rag ask "question"` and the lines it prints, up to the next prompt or the end of the block
_EXAMPLE = re.compile(r'^\$ rag ask "(?P<question>[^"]+)"\n(?P<output>(?:(?!\$ |```).*\n)+)', re.MULTILINE)
_SOURCE = re.compile(r"^source: .*\((?P<doc_id>\S+), chars (?P<start>\d+)-(?P<end>\d+), score (?P<score>[\d.]+)\)$", re.MULTILINE)


def _examples() -> list[tuple[str, str]]:
    return [(m["question"], m["output"].strip()) for m in _EXAMPLE.finditer(README.read_text(encoding="utf-8"))]


def test_the_readme_has_an_answered_and_an_abstained_example() -> None:
    outputs = [output for _, output in _examples()]
    assert any(_SOURCE.search(o) for o in outputs)
    assert any(o in NO_ANSWER.values() for o in outputs)


@pytest.mark.parametrize(("question", "output"), _examples())
def test_a_readme_example_is_what_rag_ask_answers(corpus_rag, question: str, output: str) -> None:
    result = corpus_rag.ask(question)
    source = _SOURCE.search(output)
    if source is None:
        assert output in NO_ANSWER.values(), f"README example for {question!r} is neither an answer nor an abstention"
        assert result.answer is None, f"README says {question!r} is not answered; rag ask answers {result.answer}"
        return
    a = result.answer
    assert a is not None, f"README answers {question!r}; rag ask abstains"
    shown = output.splitlines()[0]
    index = corpus_rag.snapshot.index
    start, end = int(source["start"]), int(source["end"])
    assert index.texts[index.doc_row[source["doc_id"]]][start:end] == shown  # the README's offsets slice its answer
    assert (a.doc_id, a.start, a.end, a.text) == (source["doc_id"], start, end, shown)
    assert f"{a.score:.2f}" == source["score"]
