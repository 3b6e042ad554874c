"""The tree and context-aware scenarios of compare.py: RecBole's context-aware ml-100k settings (labels
rating >= 4, an 80/10/10 random split, labelled evaluation with AUC and LogLoss), recforge against RecBole 1.2.1.

Trees: LightGBM (lightgbm.yaml: 300 rounds) and XGBoost (xgboost.yaml: 100 rounds per epoch), one epoch each, and
five epochs: RecBole's XGBoost continues its booster (500 rounds in all, as recforge's), its LightGBM rebuilds the
same 300-round booster five times, which recforge does not do (recforge runs one epoch of 300 rounds there, the
same model). ``features`` = one build of the training and validation feature matrices; the build ratio compares
load + features. Neural models: 10 epochs with their RecBole defaults (batch 2048, Adam lr 0.001), one run each.
"""

from __future__ import annotations

from report_tools import Run, Scenario, div, med, metric, records_of

TREES = ("LightGBM", "XGBoost")
NEURAL = ("LR", "FM", "DeepFM", "NFM", "WideDeep", "FNN", "DCN", "DCNV2")
# RecBole's other ten context-aware models (issue 25)
MORE_NEURAL = ("FwFM", "AFM", "PNN", "FFM", "xDeepFM", "AutoInt", "DSSM", "FiGNN", "EulerNet", "KD_DAGFM")
PEER = "RecBole 1.2.1"
AUC_TOLERANCE = 0.005
BUILD_TARGET = 0.2
FIT_TARGET = 1.0


def context_scenarios(data: list[str]) -> list[Scenario]:
    """Scenarios named ``lightgbm``, ``lightgbm-5``, ``xgboost``, ``xgboost-5`` and ``ctx-<model>``."""
    labeled = [*data, "--labeled"]
    out = []
    for model in TREES:
        args = ["--model", model, *labeled]
        one = [*args, "--epochs", "1"]
        out.append(
            Scenario(
                model.lower(),
                f"{model} on ml-100k, RecBole's context-aware settings and {model.lower()}.yaml, 1 epoch",
                [Run("recforge", "recforge", one), Run(PEER, "recbole", one)],
            )
        )
        five = [*args, "--epochs", "5"]
        ours = one if model == "LightGBM" else five
        out.append(
            Scenario(
                f"{model.lower()}-5",
                f"{model}, 5 epochs"
                + (
                    ": RecBole rebuilds its 300-round booster every epoch; recforge boosts once (1 epoch)"
                    if model == "LightGBM"
                    else ": both continue the booster (500 rounds)"
                ),
                [Run("recforge", "recforge", ours), Run(PEER, "recbole", five)],
                repeats=1,
            )
        )
    for model in NEURAL + MORE_NEURAL:
        args = ["--model", model, *labeled, "--epochs", "10"]
        out.append(
            Scenario(
                f"ctx-{model.lower()}",
                f"{model} on ml-100k, RecBole's context-aware settings, 10 epochs (batch 2048, Adam lr 0.001)",
                [Run("recforge", "recforge", args), Run(PEER, "recbole", args)],
                repeats=1,
            )
        )
    return out


def context_section(by_name: dict[str, Scenario]) -> list[str]:
    """Tables of the tree and context-aware scenarios against their targets (empty before any ran)."""
    names = ["lightgbm", "xgboost", *(f"ctx-{model.lower()}" for model in NEURAL + MORE_NEURAL)]
    if not any(by_name.get(s) and by_name[s].records for s in names):
        return []
    lines = [
        "## Trees and context-aware models: quality and ratios",
        "",
        "recforge / RecBole 1.2.1 on ml-100k with RecBole's context-aware settings; medians over the runs above.",
        "",
        "| scenario | test AUC recforge / RecBole (≥ RecBole − 0.005) | load + features (≤ 0.2) "
        "| whole fit (≤ 1.0) | rounds |",
        "|---|---|---|---|---|",
    ]
    for name in ("lightgbm", "lightgbm-5", "xgboost", "xgboost-5"):
        ours, peer = records_of(by_name, name, "recforge"), records_of(by_name, name, PEER)
        if not ours and not peer:
            continue
        auc_ours, auc_peer = metric(ours, "auc"), metric(peer, "auc")
        build = div(_sum(ours, "load", "features"), _sum(peer, "load", "features"))
        fit = div(med(ours, "fit"), med(peer, "fit"))
        rounds = {"lightgbm": "300 / 300", "lightgbm-5": "300 / 5 x 300", "xgboost": "100 / 100"}.get(name, "500 / 500")
        lines.append(
            f"| {by_name[name].title.split(' on ')[0].split(',')[0]} ({name}) | {_auc(auc_ours, auc_peer)} | "
            f"{_judged(build, BUILD_TARGET)} | {_judged(fit, FIT_TARGET)} | {rounds} |"
        )
    if len(lines) == 6:  # no tree scenario ran: no tree table
        lines = lines[:3]
    lines += [
        "",
        "| model (10 epochs) | test AUC recforge | test AUC RecBole | AUC recforge − RecBole (≥ −0.005) "
        "| epoch ratio (≤ 0.3) | peak RSS MB recforge / RecBole |",
        "|---|---|---|---|---|---|",
    ]
    for model in NEURAL + MORE_NEURAL:
        ours, peer = (records_of(by_name, f"ctx-{model.lower()}", label) for label in ("recforge", PEER))
        if not ours and not peer:
            continue
        lines.append(
            f"| {model} | {_fmt(metric(ours, 'auc'), 4)} | {_fmt(metric(peer, 'auc'), 4)} | "
            f"{_auc_gap(metric(ours, 'auc'), metric(peer, 'auc'))} | "
            f"{_judged(div(med(ours, 'epoch'), med(peer, 'epoch')), 0.3)} | "
            f"{_fmt(med(ours, 'peak_rss_mb'), 0)} / {_fmt(med(peer, 'peak_rss_mb'), 0)} |"
        )
    lines.append("")
    return lines


def _sum(records: list[dict], *keys: str) -> float | None:
    values = [med(records, key) for key in keys]
    return sum(values) if all(v is not None for v in values) else None


def _fmt(value: float | None, places: int) -> str:
    return "—" if value is None else f"{value:.{places}f}"


def _auc(ours: float | None, peer: float | None) -> str:
    if ours is None or peer is None:
        return f"{_fmt(ours, 4)} / {_fmt(peer, 4)}"
    met = ours >= peer - AUC_TOLERANCE
    return f"{ours:.4f} / {peer:.4f} ({ours - peer:+.4f}) {'met' if met else '**missed**'}"


def _auc_gap(ours: float | None, peer: float | None) -> str:
    if ours is None or peer is None:
        return "—"
    return f"{ours - peer:+.4f} {'met' if ours >= peer - AUC_TOLERANCE else '**missed**'}"


def _judged(value: float | None, target: float) -> str:
    if value is None:
        return "—"
    return f"{value:.2f} {'met' if value <= target else '**missed**'}"
