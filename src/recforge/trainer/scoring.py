"""Scoring an evaluation loader with a model, batch by batch, into an ``Evaluator``.

The one place where a model meets evaluation data: the loader says what to score (``mode``), the model scores,
the evaluator turns scores into metrics. Scores are computed in full precision, without gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from recforge.data.interaction import Interaction
from recforge.errors import ConfigError
from recforge.evaluation.evaluator import Evaluator, check_mode
from recforge.utils.progress import progress


@torch.no_grad()
def score_loader(
    model: torch.nn.Module,
    eval_data: Any,
    evaluator: Evaluator,
    device: torch.device,
    label_field: str,
    show_progress: bool = False,
    merge: Callable[[Evaluator], None] | None = None,
) -> dict[str, float]:
    """Evaluate ``model`` on every batch of ``eval_data`` and return ``{metric@k: value}``.

    ``eval_data.mode`` is "full" (rank every item), "sampled" (rank each user's candidates) or "labeled" (score
    each row against its label in ``label_field``). ``merge`` (distributed evaluation) completes the evaluator
    with the other ranks' values before the metrics are computed.
    """
    model.eval()
    evaluator.reset()
    evaluator.set_item_counts(getattr(eval_data, "item_counts", None))
    mode = getattr(eval_data, "mode", "full")
    check_mode(evaluator.metric_names, mode, getattr(eval_data, "phase", None))
    if mode == "labeled" and label_field not in eval_data.dataset.inter_feat:
        raise ConfigError(
            f"eval_args.mode labeled scores labelled rows, but the split has no {label_field!r} column (LABEL_FIELD); "
            "set threshold (e.g. {rating: 4}) or point LABEL_FIELD at a loaded column"
        )
    for batch in progress(eval_data, show_progress, "evaluate"):
        if mode == "labeled":
            interaction = batch[0].to(device)
            evaluator.add_labelled(model.predict(interaction), interaction[label_field], interaction[model.USER_ID])
        elif mode == "sampled":
            _score_sampled(model, evaluator, device, *batch)
        else:
            _score_full(model, evaluator, device, *batch)
    if merge is not None:
        merge(evaluator)
    return evaluator.result()


def _score_full(model, evaluator: Evaluator, device, interaction, history, positive_rows, positive_items) -> None:
    moved = interaction.to(device)
    scores = model.full_sort_predict(moved).view(len(moved), -1)
    _keep_joined(interaction, moved)
    if history is not None:  # sequential evaluation ranks seen items unless mask_history_items
        history = (history[0].to(device), history[1].to(device))
    evaluator.add_ranking(scores, history, positive_rows.to(device), positive_items.to(device))


def _keep_joined(batch: Interaction, moved: Interaction) -> None:
    """Store in ``batch`` the features the model joined on ``moved`` (its copy on the device), such as the [B, L]
    history lists of sequential examples: full-ranking loaders reuse their batches, so later evaluations read them
    instead of gathering them again (the memory of the lists a model reads, as RecBole's loaders hold them). Only
    joinable feature names are kept, as CPU tensors (batches stay on the CPU); models must not write into the
    batch they score (none does), or the written value would be kept."""
    loaded, joined = batch.loaded(), moved.loaded()
    added = [name for name in joined if name not in loaded]
    if added:
        joinable = set(batch.columns)
        for name in added:
            if name in joinable:
                batch[name] = joined[name].cpu()


def _score_sampled(model, evaluator: Evaluator, device, pairs, rows, positive_rows, positive_items) -> None:
    """Rank each user's candidates (its positives and sampled negatives); for value metrics the candidates are
    also labelled rows: 1 for a positive, 0 for a sampled negative (RecBole's labels in uniN / popN modes)."""
    pairs, rows = pairs.to(device), rows.to(device)
    positive_rows, positive_items = positive_rows.to(device), positive_items.to(device)
    n_users = int(rows.max()) + 1 if len(rows) else 0
    pair_scores = model.predict(pairs).float()
    scores = torch.full((n_users, model.n_items), -torch.inf, device=device)
    items = pairs[model.ITEM_ID]
    scores[rows, items] = pair_scores
    if evaluator.needs_labels:
        keys = torch.sort(positive_rows * model.n_items + positive_items).values
        query = rows * model.n_items + items
        found = torch.searchsorted(keys, query).clamp_(max=max(len(keys) - 1, 0))
        labels = (keys[found] == query).float() if len(keys) else torch.zeros_like(pair_scores)
        evaluator.add_labelled(pair_scores, labels, pairs[model.USER_ID])
    evaluator.add_ranking(scores, None, positive_rows, positive_items)


def check_training_data(model: torch.nn.Module, train_data: Any, valid_data: Any, metrics: Any) -> None:
    """A ConfigError when ``train_data`` cannot train ``model`` (a pairwise model needs negatives, which a loader
    built with ``train_neg_sample_args: None`` does not draw; RecBole builds such loaders too, for scripts that
    only read the batches) or ``metrics`` cannot be computed on ``valid_data``'s mode."""
    from recforge.utils.enum_type import InputType

    pairwise = getattr(model, "input_type", None) == InputType.PAIRWISE or getattr(model, "loss_type", None) == "BPR"
    pairwise = pairwise or getattr(model, "needs_negatives", False)  # DIN, DIEN: the negatives are labelled 0
    pairwise = pairwise and getattr(model, "trainable", True)
    if pairwise and hasattr(train_data, "sampler") and train_data.sampler is None:
        raise ConfigError(
            f"{type(model).__name__} is trained on pairs (positive, negative) and needs negative sampling; "
            "set train_neg_sample_args, e.g. {distribution: uniform, sample_num: 1} (RecBole would fail at the "
            "first batch: the loss reads the missing negative item column)"
        )
    if valid_data is not None:  # refused before training rather than after the first epoch
        check_mode(metrics, getattr(valid_data, "mode", "full"), getattr(valid_data, "phase", None))
