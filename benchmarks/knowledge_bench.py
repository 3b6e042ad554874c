"""The knowledge-aware scenarios of compare.py: each of the ten KG models on ml-100k for 5 epochs with the peer
settings, recforge in fp32 and bf16 against RecBole 1.2.1, and their target rows.

RecBole's KGAT needs dgl, whose releases that install beside torch 2.13 reject RecBole's dgl-0.x calls; it runs with
the driver's ``--dgl-shim`` (a run-time translation of two calls), so its time is an estimate of KGAT with a
working dgl. KGIN and MCCLK need torch_scatter, which has no wheel for torch 2.13; they run with ``--scatter-shim``
(its two functions written with torch's index_add_ / scatter_reduce). RecBole's RippleNet takes minutes per epoch:
its scenario allows an hour. RecBole scores MKR and KTUP pair by pair (no ``full_sort_predict``): they run with
RecBole's stock ``eval_batch_size`` (4096 cells: 2 users of ml-100k per batch), since with all 943 users in one
batch its MKR materialises [1.5M, d, d] cross&compress matrices and is killed at 24 GB (measured). Each scenario
runs once (seed 2020): RecBole's slow models make repetitions cost hours; the epoch time is the median of the run's
5 epochs.
"""

from __future__ import annotations

from report_tools import Run, Scenario, div, med, metric, records_of

# (model, ratio targets: epoch, evaluation; None: reported only)
KNOWLEDGE_MODELS = {
    "CKE": (0.3, None),
    "KGAT": (0.3, None),
    "MKR": (0.3, 0.05),
    "KGIN": (0.3, None),
    "KTUP": (None, 0.05),
    "RippleNet": (0.1, None),
    "KGCN": (None, None),
    "KGNNLS": (None, None),
    "CFKG": (None, None),
    "MCCLK": (None, None),
}
RIPPLENET_PEAK_GB = 1.0


def knowledge_scenarios(data: list[str]) -> list[Scenario]:
    """One scenario per knowledge-aware model (named by its lower-case name)."""
    scenarios = []
    for model in KNOWLEDGE_MODELS:
        args = ["--model", model, *data]
        shim = {"KGAT": ["--dgl-shim"], "KGIN": ["--scatter-shim"], "MCCLK": ["--scatter-shim"]}.get(model, [])
        # RecBole's stock eval_batch_size for its pair-by-pair scorers (4096 cells: 2 ml-100k users per batch).
        pairwise = ["--eval-users", "2"] if model in ("MKR", "KTUP") else []
        peer = [*args, *shim, *pairwise]
        scenarios.append(
            Scenario(
                model.lower(),
                f"{model} on ml-100k: 5 epochs, the peer settings (batch 2048, Adam lr 0.001, RecBole's defaults)",
                [
                    Run("recforge", "recforge", args),
                    Run("recforge, bf16", "recforge", [*args, "--set", "precision=bf16"]),
                    Run("RecBole 1.2.1" + (" (dgl shim)" if model == "KGAT" else ""), "recbole", peer),
                ],
                repeats=1,
                timeout=3600,
            )
        )
    return scenarios


def knowledge_section(by_name: dict[str, Scenario]) -> list[str]:
    """One table of the knowledge-aware models' ratios against their targets (an empty list before any ran)."""
    if not any(by_name.get(model.lower()) and by_name[model.lower()].records for model in KNOWLEDGE_MODELS):
        return []
    lines = [
        "## Knowledge-aware models: ratios and targets",
        "",
        "recforge / RecBole 1.2.1 on ml-100k, 5 epochs, one run each (seed 2020); a target in parentheses.",
        "",
        "| model | test NDCG@10 (≥ 0.95) | train epoch | evaluation | bf16 / fp32 NDCG@10 "
        "| peak RSS MB, recforge / RecBole |",
        "|---|---|---|---|---|---|",
    ]
    for model, (epoch_target, eval_target) in KNOWLEDGE_MODELS.items():
        name = model.lower()
        ours, half = records_of(by_name, name, "recforge"), records_of(by_name, name, "recforge, bf16")
        peer = records_of(by_name, name, "RecBole 1.2.1" + (" (dgl shim)" if model == "KGAT" else ""))
        memory_target = RIPPLENET_PEAK_GB * 1024 if model == "RippleNet" else None
        cells = [
            _judged(div(metric(ours, "ndcg@10"), metric(peer, "ndcg@10")), 0.95, at_least=True),
            _judged(div(med(ours, "epoch"), med(peer, "epoch")), epoch_target),
            _judged(div(med(ours, "eval"), med(peer, "eval")), eval_target),
            _judged(div(metric(half, "ndcg@10"), metric(ours, "ndcg@10")), None),
            _judged(med(ours, "peak_rss_mb"), memory_target, digits=0)
            + " / "
            + _judged(med(peer, "peak_rss_mb"), None, digits=0),
        ]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Evaluation ratios below 0.005 print as 0.00. One run per model: after 5 epochs a single run's NDCG@10 varies "
        "with the seed by more than the 5 % tolerance, in both systems; where one run falls short, [the "
        "knowledge-aware report](../benchmarks/results/knowledge-2026-11-29.md) compares medians over seven seeds.",
        "",
    ]
    return lines


def _judged(value: float | None, target: float | None, at_least: bool = False, digits: int = 2) -> str:
    """A value, with its target and whether it is met when there is one."""
    if value is None:
        return "—"
    text = f"{value:.{digits}f}"
    if target is None:
        return text
    met = value >= target if at_least else value <= target
    return f"{text} ({'≥' if at_least else '≤'} {target:g}) {'met' if met else '**missed**'}"
