"""The sequential scenarios of compare.py: each of the 21 ID-based sequential models on ml-100k with RecBole's
sequential settings (leave-one-out ``valid_and_test``, order TO, full ranking, ``MAX_ITEM_LIST_LENGTH`` 50, batch
2048, Adam lr 0.001, each model's defaults), recforge against RecBole 1.2.1, and the table of their ratios.

RecBole's sequential models are slow on this 2-core machine (minutes per ml-100k epoch), so a scenario runs once
(seed 2020) for ``SEQUENTIAL_EPOCHS`` epochs (``--set`` can raise it); the epoch time is the median of the run's
epochs, the evaluation time the median of its validations. Models whose loss is CE train without sampled
negatives (RecBole refuses its default negatives with CE); FPMC and TransRec train with one uniform negative.

    python benchmarks/compare.py --recbole-python ~/.cache/recforge-peer/recbole-venv/bin/python \\
        --only seq-sasrec,seq-gru4rec
"""

from __future__ import annotations

from report_tools import Run, Scenario, div, med, metric, records_of

SEQUENTIAL_EPOCHS = 5
# model -> (train epoch target, evaluation target); None: reported only. Every model: test NDCG@10 >= 0.95 x
# RecBole's, create_dataset + data_preparation <= 0.05 x, peak RSS <= 0.3 x.
SEQUENTIAL_MODELS = {
    "SASRec": (0.3, 0.2),
    "GRU4Rec": (0.3, 0.2),
    "BERT4Rec": (0.3, 0.2),
    "NARM": (0.3, 0.2),
    "SRGNN": (0.3, 0.2),
    "Caser": (0.3, 0.2),
    "LightSANs": (0.3, 0.2),
    "CORE": (0.3, 0.2),
    "STAMP": (None, 0.2),
    "NextItNet": (None, 0.2),
    "FPMC": (None, 0.2),
    "TransRec": (None, 0.2),
    "GCSAN": (None, 0.2),
    "FOSSIL": (None, 0.2),
    "HRM": (None, 0.2),
    "NPE": (None, 0.2),
    "SHAN": (None, 0.2),
    "HGN": (None, 0.2),
    "SINE": (None, 0.2),
    "RepeatNet": (None, 0.2),
    "FEARec": (None, 0.2),
    # part 2 (feature-aware, Softmax-CPR, click-through; S3Rec: its pretraining stage, whose epoch is the target)
    "S3Rec": (0.3, None),
    "SASRecF": (0.3, 0.2),
    "GRU4RecF": (None, 0.2),
    "FDSA": (0.3, 0.2),
    "SASRecCPR": (None, 0.2),
    "GRU4RecCPR": (None, 0.2),
    "DIN": (0.3, 0.2),
    "DIEN": (0.3, 0.2),
    "KSR": (None, 0.2),
    "GRU4RecKG": (None, 0.2),
}
ITEM_FEATURES = ("SASRecF", "GRU4RecF", "FDSA", "S3Rec")  # RecBole's special_sequential_on_ml-100k.yaml columns
KNOWLEDGE = ("KSR", "GRU4RecKG")  # read .kg / .link and TransE vectors (.ent / .rel: compare.py writes them)
CLICK_THROUGH = ("DIN", "DIEN")  # RecBole's sequential_DIN.yaml: uni100, AUC / LogLoss, user and item columns
QUALITY = {"DIN": "auc", "DIEN": "auc", "S3Rec": None}  # the test metric compared (others: ndcg@10; None: none)
PAIRWISE_ONLY = ("FPMC", "TransRec")  # their only loss compares the target with a sampled negative
SETTINGS = [
    "--order",
    "TO",
    "--set",
    "eval_args={split: {LS: valid_and_test}, order: TO, mode: full}",
    "--set",
    "load_col={inter: [user_id, item_id, rating, timestamp]}",
    "--set",
    "MAX_ITEM_LIST_LENGTH=50",
]


def sequential_scenarios(
    data: list[str], epochs: int = SEQUENTIAL_EPOCHS, kg_data: list[str] | None = None
) -> list[Scenario]:
    """One scenario per sequential model, named ``seq-<model in lower case>``; ``kg_data``: the data arguments of
    the knowledge-aware ones (ml-100k with .ent / .rel files)."""
    scenarios = []
    for model in SEQUENTIAL_MODELS:
        negatives = [] if model in PAIRWISE_ONLY + CLICK_THROUGH else ["--set", "train_neg_sample_args=~"]
        where = kg_data if model in KNOWLEDGE and kg_data else data
        args = ["--model", model, *where, *settings_of(model), *negatives, "--epochs", str(epochs)]
        if model == "S3Rec":  # the pretraining stage: pretrain_epochs epochs, saved once at the end (both systems)
            args += ["--set", f"pretrain_epochs={epochs}", "--set", f"save_step={epochs}"]
        scenarios.append(
            Scenario(
                f"seq-{model.lower()}",
                f"{model} on ml-100k: {epochs} epochs, RecBole's sequential settings (LS valid_and_test, TO, full)",
                [Run("recforge", "recforge", args), Run("RecBole 1.2.1", "recbole", args)],
                repeats=1,
                timeout=7200,
            )
        )
    return scenarios


def settings_of(model: str) -> list[str]:
    """The command-line settings of ``model``'s scenario (RecBole's quick-start files for it, written out)."""
    if model in ITEM_FEATURES:
        columns = "load_col={inter: [user_id, item_id, rating, timestamp], item: [item_id, release_year, class]}"
        return [*SETTINGS[:4], "--set", columns, *SETTINGS[6:]]
    if model in KNOWLEDGE:  # RecBole's sequential_embedding_model.yaml does not run as it is (docs/architecture.md)
        vectors = "ent: [ent_id, ent_emb], rel: [rel_id, rel_emb]" if model == "KSR" else "ent: [ent_id, ent_emb]"
        columns = (
            "load_col={inter: [user_id, item_id, rating, timestamp], kg: [head_id, relation_id, tail_id], "
            f"link: [item_id, entity_id], {vectors}}}"
        )
        files = ["--set", f"additional_feat_suffix=[{'ent, rel' if model == 'KSR' else 'ent'}]"]
        weights = "{ent_id: ent_emb, rel_id: rel_emb}" if model == "KSR" else "{ent_id: ent_emb}"
        aliases = ["--set", "alias_of_entity_id=[ent_id]", "--set", "alias_of_relation_id=[rel_id]"]
        aliases = aliases if model == "KSR" else aliases[:2]
        return [*SETTINGS[:4], "--set", columns, *files, "--set", f"preload_weight={weights}", *aliases, *SETTINGS[6:]]
    if model in CLICK_THROUGH:
        columns = (
            "load_col={inter: [user_id, item_id, rating, timestamp], user: [user_id, age, gender, occupation], "
            "item: [item_id, release_year]}"
        )
        uni100 = "eval_args={split: {LS: valid_and_test}, order: TO, mode: uni100}"
        metrics = ["--set", "metrics=[AUC, LogLoss]", "--set", "valid_metric=AUC"]
        return ["--order", "TO", "--set", uni100, "--set", columns, *metrics, *SETTINGS[6:]]
    return SETTINGS


def sequential_section(by_name: dict[str, Scenario]) -> list[str]:
    """The table of the sequential models' ratios against their targets (an empty list before any ran)."""
    names = [m for m in SEQUENTIAL_MODELS if by_name.get(f"seq-{m.lower()}") and by_name[f"seq-{m.lower()}"].records]
    if not names:
        return []
    lines = [
        "## Sequential models: ratios and targets",
        "",
        "recforge / RecBole 1.2.1 on ml-100k, RecBole's sequential settings, each pair run at the same time; medians "
        "over the seeds listed (test NDCG@10 of both: the medians, and the ratio of the medians; AUC for DIN and "
        "DIEN); a target in parentheses.",
        "",
        "| model | epochs | seeds | test NDCG@10 recforge / RecBole (ratio ≥ 0.95) | train epoch | evaluation "
        "| create_dataset + data_preparation (≤ 0.05) | peak RSS (≤ 0.3) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in names:
        name = f"seq-{model.lower()}"
        ours, peer = records_of(by_name, name, "recforge"), records_of(by_name, name, "RecBole 1.2.1")
        epoch_target, eval_target = SEQUENTIAL_MODELS[model]
        quality = QUALITY.get(model, "ndcg@10")
        ndcg = (metric(ours, quality), metric(peer, quality)) if quality else (None, None)
        quality = (
            f"{_num(ndcg[0])} / {_num(ndcg[1])}{' (AUC)' if quality == 'auc' else ''}: "
            + _judged(div(*ndcg), 0.95, at_least=True)
            if quality
            else "pretraining only: not compared"
        )
        lines.append(
            f"| {model} | {_epochs(ours)} | {_seeds(ours)} | {quality} "
            f"| {_judged(div(med(ours, 'epoch'), med(peer, 'epoch')), epoch_target)} "
            f"| {_judged(div(med(ours, 'eval'), med(peer, 'eval')), eval_target)} "
            f"| {_judged(div(med(ours, 'load'), med(peer, 'load')), 0.05)} "
            f"| {_judged(div(med(ours, 'peak_rss_mb'), med(peer, 'peak_rss_mb')), 0.3)} |"
        )
    return [*lines, ""]


def _epochs(records: list[dict]) -> str:
    values = {r.get("epochs") for r in records if r.get("epochs") is not None}
    return ", ".join(str(v) for v in sorted(values)) or "?"


def _seeds(records: list[dict]) -> str:
    return ", ".join(str(v) for v in sorted({r.get("seed") for r in records if r.get("seed") is not None})) or "?"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _judged(ratio: float | None, target: float | None, at_least: bool = False) -> str:
    if ratio is None:
        return "not measured"
    if target is None:
        return f"{ratio:.2f}"
    met = ratio >= target if at_least else ratio <= target
    return f"{ratio:.2f} ({target}) {'met' if met else '**missed**'}"
