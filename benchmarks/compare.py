"""recforge against RecBole 1.2.1 and the raw-PyTorch floor, side by side on this machine.

    python benchmarks/compare.py --recbole-python ~/.cache/recforge-peer/recbole-venv/bin/python \
        [--repeats 3] [--data-path ../shared/datasets] [--only bpr,pop] [--out docs/benchmarks.md]

Every measurement is a fresh process (``recforge_driver.py``, ``recbole_driver.py`` or ``floor.py``); the systems
alternate within each repetition (A B A B ...), so drift of the machine hits both; with ``--side-by-side`` a
scenario's runs start at the same time instead (for long runs on a machine that other work shares: both see
the same load, and a pair takes the time of its longer run). The report gives medians and
(min-max), the ratios recforge / RecBole and recforge / floor, whether each target is met, and the test metrics
of both. Without ``--recbole-python`` (or $RECBOLE_PYTHON) the recforge and floor sides still run and the report
says that RecBole was not measured. Raw records go to ``benchmarks/results/compare.jsonl``.

Data: ml-100k from ``--data-path``; generated under ``--workdir`` (default .bench/, ignored by git): a copy of
ml-100k whose timestamps are their ranks (exact in float32, see the Pop equivalence scenario), the synthetic
5,000,000-interaction file of ``data_scale.py``, and a 200,000-user x 50,000-item catalogue for scoring.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from context_bench import context_scenarios, context_section  # noqa: E402
from knowledge_bench import knowledge_scenarios, knowledge_section  # noqa: E402
from machine import describe  # noqa: E402
from report_tools import Run, Scenario, cell, div, med, metric, records_of, report_row, target_row  # noqa: E402
from sequential_bench import sequential_scenarios, sequential_section  # noqa: E402
from synthetic import generate  # noqa: E402

LOAD_COL = "load_col={inter: [user_id, item_id, rating, timestamp]}"


def scenarios(data_path: Path, work: Path) -> list[Scenario]:
    ml = ["--dataset", "ml-100k", "--data-path", str(data_path)]
    exact = ["--dataset", "ml-100k", "--data-path", str(work / "exact-time")]
    big = ["--dataset", "synthetic-5000k", "--data-path", str(work / "data"), "--set", LOAD_COL]
    wide = ["--dataset", "scoring-200k", "--data-path", str(work / "data"), "--set", LOAD_COL]
    to = ["--order", "TO", "--epochs", "1"]
    return [
        Scenario(
            "bpr",
            "BPR on ml-100k: 5 epochs, RO split by user 0.8/0.1/0.1, batch 2048, Adam lr 0.001, d 64",
            [
                Run("recforge", "recforge", ["--model", "BPR", *ml]),
                Run("RecBole 1.2.1", "recbole", ["--model", "BPR", *ml]),
                Run("raw PyTorch floor", "floor", ["bpr", "--data-path", str(data_path), "--dataset", "ml-100k"]),
            ],
            vary_seed=True,
        ),
        _graph("lightgcn", "LightGCN", "LightGCN on ml-100k: 5 epochs, the BPR settings, n_layers 2", ml, []),
        _graph(
            "ncl",
            "NCL",
            "NCL on ml-100k: 5 epochs, the BPR settings, num_clusters 100, warm_up_step 1 (the peer's)",
            ml,
            ["--set", "num_clusters=100", "--set", "warm_up_step=1"],
        ),
        _time_ordered("pop", "Pop", "Pop on ml-100k, TO split (the real timestamps)", ml),
        _time_ordered("itemknn", "ItemKNN", "ItemKNN (k 100) on ml-100k, TO split (the real timestamps)", ml),
        Scenario(
            "pop-exact",
            "Pop equivalence: ml-100k with float32-exact timestamps; RecBole with batch size 1 and no "
            "sampled negatives (so its Pop counts interactions); recforge with torch.topk ties",
            [
                Run(
                    "recforge, torch.topk ties",
                    "recforge",
                    ["--model", "Pop", *to, *exact, "--set", "eval_tie_break=torch_topk"],
                ),
                Run(
                    "RecBole 1.2.1, fixed Pop",
                    "recbole",
                    ["--model", "Pop", *to, *exact, "--train-batch-size", "1", "--set", "train_neg_sample_args=null"],
                ),
            ],
            repeats=1,
        ),
        *knowledge_scenarios(ml),
        *sequential_scenarios(ml, kg_data=["--dataset", "ml-100k", "--data-path", str(work / "kg-seq")]),
        *context_scenarios(ml),
        Scenario(
            "load-5m",
            "Loading the synthetic 5,000,000-interaction file (100k users, 50k items): create_dataset + "
            "data_preparation",
            [
                Run("recforge", "recforge", ["--model", "BPR", *big, "--load-only"]),
                Run("RecBole 1.2.1", "recbole", ["--model", "BPR", *big, "--load-only"]),
            ],
            repeats=1,
            timeout=3000,
        ),
        Scenario(
            "score-200k",
            "Full-ranking test evaluation of an untrained BPR, 200,000 users x 50,000 items, 4096 users per batch",
            [
                Run("recforge", "recforge", ["--model", "BPR", *wide, "--skip-train"]),
                Run("RecBole 1.2.1", "recbole", ["--model", "BPR", *wide, "--skip-train"]),
                Run("raw PyTorch floor", "floor", ["score", "--users", "200000", "--items", "50000"]),
            ],
            repeats=1,
            timeout=3000,
        ),
    ]


def _graph(name: str, model: str, title: str, data: list[str], extra: list[str]) -> Scenario:
    """A graph model: recforge in fp32 and bf16 against RecBole (which cannot train it in mixed precision)."""
    args = ["--model", model, *data, *extra]
    return Scenario(
        name,
        title,
        [
            Run("recforge", "recforge", args),
            Run("recforge, bf16", "recforge", [*args, "--set", "precision=bf16"]),
            Run("RecBole 1.2.1", "recbole", args),
        ],
        vary_seed=True,
    )


def _time_ordered(name: str, model: str, title: str, data: list[str]) -> Scenario:
    """A deterministic model on a TO split: recforge (both tie rules) against RecBole, once."""
    args = ["--model", model, "--order", "TO", "--epochs", "1", *data]
    return Scenario(
        name,
        title,
        [
            Run("recforge", "recforge", args),
            Run("recforge, torch.topk ties", "recforge", [*args, "--set", "eval_tie_break=torch_topk"]),
            Run("RecBole 1.2.1", "recbole", args),
        ],
        repeats=1,
    )


def prepare_data(data_path: Path, work: Path) -> None:
    """Generate what the scenarios read (once)."""
    exact = work / "exact-time" / "ml-100k"
    if not (exact / "ml-100k.inter").is_file():
        import numpy as np

        lines = (data_path / "ml-100k" / "ml-100k.inter").read_text().splitlines()
        rows = [line.split("\t") for line in lines[1:]]
        _, rank = np.unique(np.array([float(r[3]) for r in rows]), return_inverse=True)
        exact.mkdir(parents=True, exist_ok=True)
        body = "".join(f"{r[0]}\t{r[1]}\t{r[2]}\t{k}\n" for r, k in zip(rows, rank, strict=True))
        (exact / "ml-100k.inter").write_text(lines[0] + "\n" + body)
    if not (work / "kg-seq" / "ml-100k" / "ml-100k.rel").is_file():  # KSR's / GRU4RecKG's TransE vectors
        from recforge.models.knowledge.kg_embeddings import write_kg_embeddings

        write_kg_embeddings(data_path / "ml-100k", "ml-100k", work / "kg-seq", size=64, epochs=20, seed=0)
    if not (work / "data" / "synthetic-5000k" / "synthetic-5000k.inter").is_file():
        generate(work / "data", 5_000_000, 100_000, 50_000, seed=0, name="synthetic-5000k")
    if not (work / "data" / "scoring-200k" / "scoring-200k.inter").is_file():
        generate(work / "data", 4_000_000, 200_000, 50_000, seed=1, name="scoring-200k")


def execute(run: Run, seed: int | None, python: dict[str, str], timeout: int, cache: str) -> dict:
    script = {"recforge": "recforge_driver.py", "recbole": "recbole_driver.py", "floor": "floor.py"}[run.system]
    args = list(run.args)
    if seed is not None and run.system != "floor":
        args += ["--seed", str(seed)]
    env = {**os.environ, "RECFORGE_CACHE_DIR": cache, "RECFORGE_NO_DOWNLOAD": "1", "PYTHONWARNINGS": "ignore"}
    try:
        done = subprocess.run(
            [python[run.system], str(HERE / script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(
    runs: list[Run], seed: int | None, python: dict[str, str], timeout: int, cache: str, together: bool
) -> list[dict]:
    """One record per run, in ``runs``' order: one after the other, or all started at the same time."""
    if not together:
        return [execute(run, seed, python, timeout, cache) for run in runs]
    with concurrent.futures.ThreadPoolExecutor(len(runs)) as pool:
        return list(pool.map(lambda run: execute(run, seed, python, timeout, cache), runs))


# -- report ----------------------------------------------------------------------------------------


def render(all_scenarios: list[Scenario], repeats: int, recbole_python: str | None, recbole_versions: str) -> str:
    lines = [
        "# Benchmarks: recforge, RecBole 1.2.1 and a raw-PyTorch floor",
        "",
        describe(),
        f"Measured {datetime.date.today().isoformat()} with `python benchmarks/compare.py --repeats {repeats}`"
        + (f" (RecBole from `{recbole_python}`: {recbole_versions})." if recbole_python else "."),
        "Each number is one fresh process per run; the systems alternate within each repetition. Cells are medians "
        "with (min–max). `load` = create_dataset + data_preparation (read, filter, remap, split, loaders); `epoch` = "
        "one `_train_epoch` (median over the run's epochs); `eval` = one validation `_valid_epoch` (full ranking, "
        "median); `test` = the final test evaluation; `peak RSS` = the process's maximum resident memory.",
        "",
    ]
    if not recbole_python:
        lines += [
            "**RecBole was not measured** (no `--recbole-python` given): only the recforge and floor rows exist.",
            "",
        ]
    by_name = {s.name: s for s in all_scenarios}
    for scenario in all_scenarios:
        if not scenario.records:
            continue
        lines += [
            f"## {scenario.title}",
            "",
            "| system | import s | load s | epoch s | eval s | test s | peak RSS MB | test metrics (median) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for label, records in scenario.records.items():
            errors = [r["error"] for r in records if "error" in r]
            ok = [r for r in records if "error" not in r]
            metrics = ""
            if ok and ok[0].get("metrics"):
                keys = list(ok[0]["metrics"])
                metrics = ", ".join(f"{k} {statistics.median([r['metrics'][k] for r in ok]):.4f}" for k in keys)
            if errors and not ok:
                metrics = f"failed: {errors[0]}"
            lines.append(
                f"| {label} | {cell(ok, 'import')} | {cell(ok, 'load')} | {cell(ok, 'epoch')} | "
                f"{cell(ok, 'eval')} | {cell(ok, 'test')} | {cell(ok, 'peak_rss_mb', 'MB')} | {metrics} |"
            )
        lines.append("")
    lines += _targets(by_name)
    lines += knowledge_section(by_name)
    lines += sequential_section(by_name)
    lines += context_section(by_name)
    lines += _equality(by_name)
    lines += [
        "",
        "## More reports",
        "",
        "- [Evaluation semantics, metric by metric](../benchmarks/results/semantics-2026-11-29.md) "
        "(`benchmarks/semantics.py`): Pop through both systems on ml-100k and on ml-100k with 15 % of the "
        "interactions consumed again later; every ranking and beyond-accuracy metric agrees to 1e-12 except "
        "ItemCoverage and GiniIndex, which RecBole divides by the item count including the padding id. Stock "
        "RecBole 1.2.1 cannot compute four of them at all (#2131, #2191); the script fixes its Collector at run time.",
        "- [Converged quality of the graph models](../benchmarks/results/converged-2026-11-29.md) "
        "(`benchmarks/converged.py`): BPR, LightGCN, NGCF, SGL, SimGCL and NCL trained until early stopping, "
        "test metrics side by side:",
        "",
        *_table_of(HERE / "results" / "converged-2026-11-29.md"),
        "",
        "- [Knowledge-aware models: what the measurements show](../benchmarks/results/knowledge-2026-11-29.md), and "
        "their [converged quality](../benchmarks/results/converged-knowledge-2026-11-29.md) next to BPR's "
        "(recforge, trained until early stopping with the settings above):",
        "",
        *_table_of(HERE / "results" / "converged-knowledge-2026-11-29.md"),
        "",
        "- [Trees and context-aware models: what the measurements show](../benchmarks/results/context-2026-11-30.md) "
        "(why recforge's tree AUC is higher with the same library and parameters, and DCNV2 over four seeds).",
        "- [One machine at ml-25m's scale](../benchmarks/results/scale-25m-2026-11-30.md) "
        "(`benchmarks/scale_25m.py`): loading, BPR epochs with dense and lazy Adam, full evaluation against a "
        "matmul + top-k floor, two processes and RecBole on 25,000,000 interactions; what meets its target and what "
        "does not yet.",
        "- [Sequential models: what the measurements show](../benchmarks/results/sequential-2026-12-07.md) "
        "(`benchmarks/sequential_bench.py`, `sequential_scale.py`, `sequential_digest.py`): the examples of ml-100k "
        "equal RecBole's, the models side by side with RecBole 1.2.1 where this machine allowed, all-position "
        "training and gBCE against RecBole-exact SASRec, and the sequential index of 25,000,000 interactions.",
        "- [Sequential models, continued](../benchmarks/results/sequential-2026-12-08.md): nine ID-based models at "
        "5 epochs side by side over three seeds, and SASRec epochs at 25,000,000 interactions.",
        "- [The ten newer context-aware models](../benchmarks/results/context-2026-12-08.md): test AUC and epochs "
        "side by side with RecBole 1.2.1 at 10 epochs.",
    ]
    return "\n".join(lines) + "\n"


def _targets(by_name: dict[str, Scenario]) -> list[str]:
    rf, rb, fl = (records_of(by_name, "bpr", label) for label in ("recforge", "RecBole 1.2.1", "raw PyTorch floor"))
    big_rf, big_rb = records_of(by_name, "load-5m", "recforge"), records_of(by_name, "load-5m", "RecBole 1.2.1")
    score_rf, score_rb = (
        records_of(by_name, "score-200k", "recforge"),
        records_of(by_name, "score-200k", "RecBole 1.2.1"),
    )
    score_fl = records_of(by_name, "score-200k", "raw PyTorch floor")
    graph_rows = []
    for scenario, model in (("lightgcn", "LightGCN"), ("ncl", "NCL")):
        ours, peer = records_of(by_name, scenario, "recforge"), records_of(by_name, scenario, "RecBole 1.2.1")
        half = records_of(by_name, scenario, "recforge, bf16")
        graph_rows += [
            target_row(
                f"{model} train epoch, recforge / RecBole",
                div(med(ours, "epoch"), med(peer, "epoch")),
                0.2,
                "ml-100k, 5 epochs",
            ),
            target_row(
                f"{model} test NDCG@10, recforge / RecBole",
                div(metric(ours, "ndcg@10"), metric(peer, "ndcg@10")),
                0.95,
                "medians over the repetitions' seeds",
                at_least=True,
            ),
            report_row(
                f"{model} bf16 epoch / fp32 epoch, recforge",
                div(med(half, "epoch"), med(ours, "epoch")),
                "reported, no target; RecBole cannot train it in bf16",
            ),
        ]
    return [
        "## Targets (ratios of medians)",
        "",
        "The column floor / RecBole gives the same ratio for the raw-PyTorch floor: a target below it asks for "
        "less than a minimal hand-written loop needs.",
        "",
        "| ratio | target | measured | | floor / RecBole | basis |",
        "|---|---|---|---|---|---|",
        target_row(
            "load + processing, recforge / RecBole", div(med(rf, "load"), med(rb, "load")), 0.33, "BPR, ml-100k"
        ),
        target_row(
            "BPR train epoch, recforge / RecBole",
            div(med(rf, "epoch"), med(rb, "epoch")),
            0.2,
            "ml-100k",
            div(med(fl, "epoch"), med(rb, "epoch")),
        ),
        target_row(
            "full-ranking evaluation, recforge / RecBole",
            div(med(rf, "eval"), med(rb, "eval")),
            0.2,
            "validation, ml-100k",
            div(med(fl, "eval"), med(rb, "eval")),
        ),
        target_row(
            "peak RSS, recforge / RecBole",
            div(med(rf, "peak_rss_mb"), med(rb, "peak_rss_mb")),
            0.6,
            "BPR run, ml-100k",
            div(med(fl, "peak_rss_mb"), med(rb, "peak_rss_mb")),
        ),
        target_row("BPR train epoch, recforge / floor", div(med(rf, "epoch"), med(fl, "epoch")), 1.3, "ml-100k"),
        target_row(
            "evaluation, recforge / floor (matmul + top-k)",
            div(med(rf, "eval"), med(fl, "eval")),
            1.3,
            "validation users, ml-100k",
        ),
        target_row(
            "5M load + processing, recforge / RecBole",
            div(med(big_rf, "load"), med(big_rb, "load")),
            0.2,
            "synthetic 5M",
        ),
        target_row("5M peak RSS, recforge (GB)", div(med(big_rf, "peak_rss_mb"), 1024), 4.0, "synthetic 5M"),
        target_row(
            "200k x 50k scoring, recforge / RecBole",
            div(med(score_rf, "test"), med(score_rb, "test")),
            1.0,
            "no target given; ≤ 1 means faster",
        ),
        target_row(
            "200k x 50k scoring, recforge / floor",
            div(med(score_rf, "test"), med(score_fl, "test")),
            1.3,
            "the evaluation floor target, at scale",
        ),
        *graph_rows,
        "",
    ]


def _equality(by_name: dict[str, Scenario]) -> list[str]:
    lines = [
        "## Same results",
        "",
        "Test metrics at 4 decimals, recforge against RecBole 1.2.1:",
        "",
        "| scenario | recforge | RecBole | equal to 4 decimals |",
        "|---|---|---|---|",
    ]
    pairs = [
        ("pop", "recforge"),
        ("pop", "recforge, torch.topk ties"),
        ("itemknn", "recforge"),
        ("itemknn", "recforge, torch.topk ties"),
        ("pop-exact", "recforge, torch.topk ties"),
    ]
    for scenario, label in pairs:
        ours = records_of(by_name, scenario, label)
        peer = records_of(by_name, scenario, "RecBole 1.2.1" if scenario != "pop-exact" else "RecBole 1.2.1, fixed Pop")
        if not ours or not peer or not ours[0].get("metrics") or not peer[0].get("metrics"):
            continue
        a, b = ours[0]["metrics"], peer[0]["metrics"]
        fmt = lambda m: " / ".join(f"{m[k]:.4f}" for k in sorted(m))  # noqa: E731
        equal = all(round(a[k], 4) == round(b[k], 4) for k in a)
        lines.append(f"| {scenario} ({label}) | {fmt(a)} | {fmt(b)} | {'yes' if equal else '**no**'} |")
    rf, rb = records_of(by_name, "bpr", "recforge"), records_of(by_name, "bpr", "RecBole 1.2.1")
    if rf and rb:
        lines += [
            "",
            "BPR, 5 epochs, one seed per repetition (the split and initialisation differ between the systems, "
            "so the comparison is of distributions):",
            "",
            "| metric | recforge median (min–max) | RecBole median (min–max) |",
            "|---|---|---|",
        ]
        for key in rf[0]["metrics"]:
            lines.append(
                f"| {key} | {_spread([r['metrics'][key] for r in rf])} | {_spread([r['metrics'][key] for r in rb])} |"
            )
    lines.append("(metrics in alphabetical order: hit, mrr, ndcg, precision, recall @10)")
    return lines


def _table_of(report: Path) -> list[str]:
    """The Markdown table lines of another report (empty when it does not exist)."""
    if not report.is_file():
        return []
    return [line for line in report.read_text().splitlines() if line.startswith("|")]


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.4f} ({min(values):.4f}–{max(values):.4f})"


def recbole_versions(python: str | None) -> str:
    if not python:
        return ""
    code = (
        "import recbole, torch, numpy, pandas; print(f'recbole {recbole.__version__}, torch {torch.__version__}, "
        "numpy {numpy.__version__}, pandas {pandas.__version__}')"
    )
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=False).stdout.strip()


def rerender(args: argparse.Namespace) -> None:
    """Rebuild the report from recorded runs (the raw JSON lines of one complete comparison)."""
    chosen = scenarios(args.data_path.resolve(), args.workdir.resolve())
    by_name = {s.name: s for s in chosen}
    repeats = 1
    for line in args.raw.read_text().splitlines():
        record = json.loads(line)
        scenario = by_name.get(record["scenario"])
        if scenario is not None:
            scenario.records.setdefault(record["label"], []).append(record)
            repeats = max(repeats, record["repeat"] + 1)
    for scenario in chosen:
        scenario.records = {r.label: scenario.records[r.label] for r in scenario.runs if r.label in scenario.records}
    args.out.write_text(render(chosen, repeats, args.recbole_python, recbole_versions(args.recbole_python)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recbole-python", default=os.environ.get("RECBOLE_PYTHON"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-path", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".bench")
    parser.add_argument("--only", default=None, help="comma-separated scenario names, run in this order")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--raw", type=Path, default=HERE / "results" / "compare.jsonl")
    parser.add_argument("--from-raw", action="store_true", help="render the report from --raw without measuring")
    parser.add_argument("--side-by-side", action="store_true", help="start a scenario's runs at the same time")
    parser.add_argument(
        "--seeds", default=None, help="comma-separated seeds: one repetition per seed (instead of --repeats)"
    )
    args = parser.parse_args()
    if args.from_raw:
        rerender(args)
        return
    work = args.workdir.resolve()
    prepare_data(args.data_path.resolve(), work)
    python = {"recforge": sys.executable, "floor": sys.executable, "recbole": args.recbole_python}
    versions = recbole_versions(args.recbole_python)
    every = scenarios(args.data_path.resolve(), work)
    if args.only is None:
        chosen = every
    else:  # in the order given
        by_name = {s.name: s for s in every}
        unknown = [name for name in args.only.split(",") if name not in by_name]
        if unknown:
            parser.error(f"--only: unknown scenario(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
        chosen = [by_name[name] for name in args.only.split(",")]
    args.raw.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as cache, open(args.raw, "a") as raw:
        for scenario in chosen:
            runs = [r for r in scenario.runs if r.system != "recbole" or args.recbole_python]
            seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else None
            for repeat in range(len(seeds) if seeds else scenario.repeats or args.repeats):
                seed = seeds[repeat] if seeds else 2020 + repeat if scenario.vary_seed else None
                ordered = runs if repeat % 2 == 0 else runs[::-1]
                records = _measure(ordered, seed, python, scenario.timeout, cache, args.side_by_side)
                for run, record in zip(ordered, records, strict=True):
                    record.update(scenario=scenario.name, label=run.label, repeat=repeat)
                    scenario.records.setdefault(run.label, []).append(record)
                    raw.write(json.dumps(record) + "\n")
                    raw.flush()
                    print(
                        f"{scenario.name} #{repeat} {run.label}: "
                        + ", ".join(
                            f"{k} {record[k]:.3f}"
                            for k in ("load", "epoch", "eval", "test", "peak_rss_mb")
                            if isinstance(record.get(k), (int, float))
                        )
                        + (f" ERROR {record['error']}" if "error" in record else ""),
                        flush=True,
                    )
            # keep the runs' order in the report
            scenario.records = {r.label: scenario.records[r.label] for r in runs if r.label in scenario.records}
    report = render(chosen, args.repeats, args.recbole_python, versions)
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
