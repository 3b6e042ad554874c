"""Soak check: a run killed with SIGKILL at random moments and resumed each time ends exactly as an uninterrupted run.

    python benchmarks/soak.py --kills 50 [--epochs 30] [--seed 0] [--out benchmarks/results/soak.md]

One uninterrupted ``recforge run`` gives the reference test metrics. Then the same run is started, killed after a
random delay (anywhere in start-up, training, checkpoint writes, evaluation), and resumed from its
``checkpoints/last.pth`` (or started again while it has none), ``--kills`` times; a last resume runs to the end.
The check: the final ``metrics.json`` holds the reference's test result bit for bit, the history has one line per
epoch, and no temporary file (``*.tmp``, ``.best.pth.link``) is left in the run folder. Not part of the test suite
(it takes minutes); its report is ``benchmarks/results/soak-<date>.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def command(checkpoint_dir: Path, epochs: int, resume: Path | None = None) -> list[str]:
    base = [sys.executable, "-m", "recforge", "run", "--quiet"]
    if resume is not None:
        return [*base, "--resume", str(resume)]
    return [
        *base,
        "--model",
        "BPR",
        "--dataset",
        "ml-latest-small",
        "--epochs",
        str(epochs),
        "--learning_rate",
        "0.005",
        "--train_batch_size",
        "4096",
        "--show_progress",
        "false",
        "--checkpoint_dir",
        str(checkpoint_dir),
    ]


def finished(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def check(folder: Path, expected: dict, epochs: int) -> list[str]:
    """What differs between a completed soaked run and the uninterrupted one (empty: nothing)."""
    result = finished(folder)
    problems = []
    if result["test_result"] != expected["test_result"] or result["train_loss"] != expected["train_loss"]:
        problems.append(f"{folder.name}: results differ")
    history = [json.loads(line)["epoch"] for line in (folder / "history.jsonl").read_text().splitlines()]
    if history != list(range(epochs)):
        problems.append(f"{folder.name}: history epochs {history}")
    leftovers = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.endswith((".tmp", ".link"))]
    if leftovers:
        problems.append(f"{folder.name}: temporary files {leftovers}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="recforge-soak-"))
    started = time.perf_counter()
    subprocess.run(command(work / "reference", args.epochs), check=True, capture_output=True)
    (reference,) = (work / "reference").iterdir()
    expected = finished(reference)
    wall = time.perf_counter() - started

    kills = at_start = campaigns = mid_write = 0
    epochs_at_kill: list[int] = []
    failures: list[str] = []
    while kills < args.kills:  # one campaign: a fresh run, killed and resumed until it completes
        campaigns += 1
        soak = work / f"soak-{campaigns}"
        last: Path | None = None
        while True:
            process = subprocess.Popen(
                command(soak, args.epochs, last), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(rng.uniform(0.5, wall))
            killed = process.poll() is None
            if killed:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait()
            if not killed and process.returncode != 0:
                raise SystemExit(f"a run failed on its own (status {process.returncode}): {command(soak, 1, last)}")
            if killed and soak.exists():
                mid_write += any(p.name.endswith(".tmp") for p in soak.rglob("*"))
                histories = list(soak.glob("*/history.jsonl"))
                epochs_at_kill.append(len(histories[0].read_text().splitlines()) if histories else 0)
            if last is None:
                found = sorted(soak.glob("*/checkpoints/last.pth"))
                if found:
                    last = found[0]
                elif killed:
                    at_start += 1
                    shutil.rmtree(soak, ignore_errors=True)  # no checkpoint yet: start afresh
                    continue
            folder = last.parent.parent
            if not killed and process.returncode == 0 and "test_result" in finished(folder):
                break
        failures += check(folder, expected, args.epochs)
    ok = not failures
    report = "\n".join(
        [
            f"# Soak check, {datetime.date.today()}",
            "",
            f"`python benchmarks/soak.py --kills {args.kills} --epochs {args.epochs} --seed {args.seed}`: BPR on the "
            f"bundled ml-latest-small, {args.epochs} epochs (an uninterrupted run takes {wall:.1f} s), SIGKILL after "
            f"a random delay of 0.5 to {wall:.1f} s, then `recforge run --resume last.pth`, until the run completes; "
            "then a fresh run, until enough kills.",
            "",
            f"- kills: {kills} over {campaigns} runs ({at_start} before a run's first checkpoint, which then started "
            "afresh)",
            f"- kills that left a temporary file of a write in progress (a checkpoint, the history, metrics.json): "
            f"{mid_write}, each removed by the next resume",
            "- epochs in the history at the kills: "
            + ", ".join(f"{e}: {epochs_at_kill.count(e)}" for e in sorted(set(epochs_at_kill))),
            "- every completed run: the test result and the loss history equal to the uninterrupted run's bit for "
            "bit, one history line per epoch, no temporary file left: "
            + ("yes" if ok else "NO: " + "; ".join(failures)),
            f"- verdict: {'pass' if ok else 'FAIL'}",
            "",
        ]
    )
    print(report)
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"the runs are kept in {work}")
    if args.out:
        args.out.write_text(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
