"""What a reader model has read: the articles and paragraphs it was trained or tuned on.

``package`` writes them into the manifest (``seen``) as short fingerprints, and ``rag eval``
counts the questions whose article or paragraph is among them. A SQuAD-format set evaluated with
the span reader then says how much of it is not held out: eval's XQuAD "dev" split, say, is the
reader's training split, and a public set can share articles with XQuAD or ARCD under any file name.
Both the train and the dev split count: dev chose the epoch, the calibration and the pipeline fit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.reader.data import QAExample

# 16 hex digits (64 bits): for some 2,000 fingerprints a chance collision is below 1e-12
_DIGITS = 16
_FINGERPRINT = re.compile(rf"[0-9a-f]{{{_DIGITS}}}")


def fingerprint(text: str) -> str:
    """A text's fingerprint, blind to how its whitespace runs (a set re-saved by another tool)."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:_DIGITS]


@dataclass(frozen=True)
class Seen:
    """Fingerprints of the article titles and paragraphs a model trained or was tuned on."""

    articles: frozenset[str]
    paragraphs: frozenset[str]

    @classmethod
    def of(cls, examples: Iterable[QAExample]) -> Seen:
        examples = list(examples)
        return cls(frozenset(fingerprint(e.article) for e in examples), frozenset(fingerprint(e.context) for e in examples))

    def holds(self, title: str, paragraph: str) -> bool:
        """Whether a question over ``paragraph`` of article ``title`` is not held out from the model.
        By article, as training split its data (a paragraph's neighbours were its no-answer
        windows), or by the paragraph itself under another title."""
        return fingerprint(title) in self.articles or fingerprint(paragraph) in self.paragraphs

    def to_dict(self) -> dict[str, list[str]]:
        return {"articles": sorted(self.articles), "paragraphs": sorted(self.paragraphs)}

    @classmethod
    def from_dict(cls, raw: object) -> Seen:
        """The manifest's ``seen`` block; ValueError when it is not two lists of fingerprints."""
        if not isinstance(raw, dict) or set(raw) != {"articles", "paragraphs"}:
            raise ValueError("'seen' must hold 'articles' and 'paragraphs'")
        parts = []
        for key in ("articles", "paragraphs"):
            values = raw[key]
            if not isinstance(values, list) or not all(isinstance(v, str) and _FINGERPRINT.fullmatch(v) for v in values):
                raise ValueError(f"'seen.{key}' must be a list of {_DIGITS}-digit hex fingerprints")
            parts.append(frozenset(values))
        return cls(*parts)
