"""The reader's training recipe as data: ``TrainConfig``, torch-free.

``rag train-reader`` takes its defaults from here (``rag.reader.command``), training reads it
(``rag.reader.train``), a manifest records it (``history.config``) and the pipeline fit compares
two of them (``eval/reader_ensemble.py``), so a setting and its default live in one place.
Each default is the command's: the shipped model adds ``--lr 2e-4 --soup 2 --stop-after 2`` and
its export ``--ffn-out-fp32 --fp32-layers 1`` (models/reader/MODEL_CARD.md). A setting added after
a manifest was written is off by default, so an older manifest that does not name it reads right.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """One training run's settings; the comments say what each does and what it measured."""

    epochs: int = 4
    batch_size: int = 16
    lr: float = 1e-4
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_len: int = 256
    stride: int = 128
    max_question: int = 64
    # Probability of a near-miss no-answer window per question (an off-article one at half this).
    # 0.8 passed its three-seed rule on dev (cross-fitted +0.041), but the all-data model trained
    # with it lost held out (F1 + sentence hit -0.035: it abstains on many more answerable
    # questions), so 0.4 stays (eval/RESULTS.md, "Tried: twice the no-answer windows").
    negatives: float = 0.4
    # Unanswerable twins of the questions read against their own paragraph (data.QuestionSwapper)
    swaps: float = 0.0
    seed: int = 13
    threads: int = 2
    limit: int | None = None  # examples per split (smoke runs and tests)
    # bf16 autocast is 20x *slower* than fp32 on CPUs without avx512_bf16 (our EPYC: 10 s
    # forward + 100 s backward per batch of 16 x 190 tokens, against 1.9 s + 2.9 s)
    bf16: bool = False
    # "auto": the first CUDA GPU when torch sees one (a CUDA build of torch; the train extra's
    # pinned wheel is CPU-only), else the CPU. Results differ in the last digits between devices.
    device: str = "auto"
    # Lowest encoder layers kept as e5 has them. Their outputs are computed once per window and
    # cached, so an epoch runs only the upper layers: with 6 of 12 frozen a step costs about half
    # (forward 6 + backward 6 layers instead of 12 + 12).
    # 4 beat 6 and 0 on dev.
    freeze_layers: int = 4
    english_contexts: bool = False  # also XQuAD's English questions over English paragraphs
    # Probability of a no-answer window per question from its retrieval-hard paragraph: the
    # training paragraph that e5 ranks first for it among those holding no answer text
    # (data.hard_paragraphs), the kind of passage the service reads beside the right one.
    # Measured at 0.5 over three seeds (eval/RESULTS.md): dev F1 on the gold paragraph +3.9, but
    # the pipeline picks worse spans on every seed (-0.037 selection) and abstains no more, so off.
    hard_negatives: float = 0.0
    # Probability that a training question is read code-switched: its Arabic words, each with
    # probability codeswitch.SWITCH_RATE, replaced by their nearest English word (rag.reader.codeswitch).
    # Measured at 0.5 (eval/RESULTS.md): English over Arabic +4 F1 on the gold paragraph, XQuAD
    # Arabic -2 to -3; through the pipeline the "add" form read better on dev at seed 13 (+0.045)
    # and worse at seed 15 (-0.004, every dev set), so off.
    code_switch: float = 0.0
    code_switch_add: bool = False  # add the code-switched question's windows instead of replacing the question's
    # Cloze questions made from each Arabic training paragraph (rag.reader.cloze; 0 = none).
    cloze: int = 0
    # Weight of a cloze question's windows in the loss, against 1 for a real question's: the
    # batch loss is the weighted sum over its windows divided by the batch size, so below 1 the
    # cloze questions pull less without changing the real questions' step size.
    cloze_weight: float = 1.0
    # Weight of the windows of an English question over an Arabic paragraph (XQuAD's parallel
    # questions, source ``xquad-en-ar``) in the loss, against 1 for the others, as ``cloze_weight``
    # weighs: above 1 they pull harder. Through the pipeline English questions read with lower
    # margins than the same questions in Arabic (eval/RESULTS.md, "where English questions over
    # Arabic paragraphs lose"). At 2, out of fold over two seeds: English over Arabic +2.0 F1,
    # ARCD -2.2, all -0.1; at 1.5, seed 13: English over Arabic +0.5, ARCD -2.2, all -0.2. So 1.
    en_ar_weight: float = 1.0
    # Epochs over the cloze questions alone before the real ones (0 = mixed in with them): the
    # reader first learns the task from cloze questions, then the real questions' epochs come
    # last, so the real questions decide where it ends. Each stage has its own learning-rate
    # schedule (warm-up, then decay to 0), as pre-training and fine-tuning would; ``epochs`` and
    # ``stop_after`` count the real epochs. Measured at 2 with ``cloze`` 4 (eval/RESULTS.md, 3 folds
    # x 2 orders): F1 +1.25 over all questions but ARCD -1.2, the least ARCD cost of the cloze
    # variants and still past its bar, so off.
    cloze_epochs: int = 0
    max_minutes: float = 0.0  # stop after the epoch running when this is spent (0 = no limit)
    # Stop after this epoch, keeping the learning-rate schedule of ``epochs`` (0 = run them all):
    # reproduces exactly a run that ``max_minutes`` stopped early, on any machine.
    stop_after: int = 0
    # Decay per step of an exponential moving average of the trained weights (0 = off). With it,
    # dev is read with the average and the average is what is kept. Meant for the noise of a
    # run stopped with the learning rate at half its peak; measured at 0.99 on fold 1 over two
    # example orders: F1 -0.8 (it lags a model still gaining in epoch 2), so off.
    ema: float = 0.0
    # Train on the train and dev splits together (the shipped model, once the recipe and its epoch
    # are fixed): no dev is read, the last epoch is kept, so set ``epochs``/``stop_after`` from the
    # cross-validation and carry the pipeline fit over from a model trained without dev.
    all_data: bool = False
    # Move a tenth of XQuAD's training articles (``rag.reader.data.XQUAD_DEV_TENTH``) from train to
    # dev, so the model the pipeline fit is chosen with has not read them and the fit sees English
    # questions over Arabic paragraphs. Only for that model: ``all_data`` trains on them anyway.
    xquad_dev: bool = False
    # Members of a uniform weight soup (seeds seed, seed + 1, ...): each trained without dev to
    # its last epoch, their weights averaged into one model, so the run time is one model's.
    # Measured on the GPU (3-fold CV by article, 4 seeds, --stop-after 2): F1 0.439 against
    # 0.407-0.428 for its members, ahead of every member in every fold.
    soup: int = 1
    # Knowledge distillation from an ensemble (Hinton et al. 2015): folders holding ``reader.pt``
    # of models trained here (seeds of the recipe, say). Their start/end distributions at
    # ``temperature``, averaged, are a second target beside the gold labels, with weight
    # ``distill`` (0 = the gold labels alone). Averaging two or three models' logits gained 2.3 F1
    # on ARCD dev but doubles the reader's time; a student keeps one model's time. The logged
    # training loss is then the weighted sum of both terms.
    teachers: tuple[str, ...] = ()
    distill: float = 0.0
    temperature: float = 2.0
    # Shared normalisation (Clark & Gardner 2018): batches hold whole questions (each question's
    # windows together), and beside the per-window loss a term with this weight scores one softmax
    # over the context tokens of all of a question's windows, so that span scores are comparable
    # across the passages the service reads side by side. 0 = off (per-window loss only).
    shared_norm: float = 0.0
    # With ``shared_norm``: pool each window's context logits minus its own ``<s>`` logit, the
    # margins the run time compares across windows, instead of the raw logits.
    shared_norm_margins: bool = False
    # Dropout in the trained layers while training (attention probabilities and each sublayer's
    # output, as BERT and e5 were pre-trained with, 0.1 there); the frozen layers' cached outputs
    # and every read (dev, export, run time) are without it. 0 = the measured recipe.
    dropout: float = 0.0
    # Cross-lingual consistency (as xTune, Zheng et al. 2021, with the Arabic reading as the
    # teacher): XQuAD asks each question in Arabic and in English over the same Arabic paragraph.
    # Batches hold both, and beside the gold labels the English question's start/end distribution
    # over a window is pulled, with this weight, towards the Arabic question's over the same
    # context slice (KL, the Arabic side not differentiated). 0 = off.
    cross_lingual: float = 0.0
    # Layer-wise learning-rate decay (as ELECTRA and BEiT fine-tune): each trained encoder layer
    # learns at ``layer_decay`` times the rate of the layer above it, the span head and the top
    # layer at ``lr``, so the layers nearest the pre-trained features move least. 1 = one rate.
    layer_decay: float = 1.0
    # Weight of a sentence-level term: each window holding an answer also scores one softmax over
    # no answer and the span mass of each sentence it reads (``sentence_loss``), with the answer's
    # sentence as the label, so the mass the run time weighs (Update 4) is trained directly.
    # Measured at 0.5 (eval/RESULTS.md): through the pipeline on dev, cross-fitted -0.022, +0.069
    # and -0.004 at seeds 13, 15 and 17; XQuAD Arabic up and English over Arabic down at all three, so off.
    sentence_loss: float = 0.0
    # Read e5's role prefixes: "query: " before the question, "passage: " before the passage
    # (ReaderTokenizer.window_head), as multilingual-e5 was pre-trained; the manifest tells the
    # run time to read them too. Measured (eval/RESULTS.md): through the pipeline on dev,
    # cross-fitted +0.006, -0.064 and 0.000 at seeds 13, 15 and 17, our QA set down at all three,
    # though the gold paragraph read better (int8 check +0.012, +0.053, +0.065), so off.
    e5_prefixes: bool = False
