"""How runs are told apart in a comparison: the config keys that differ between them, a short label per run
(its model and the values that set it apart, not its time-stamped folder), and the configurations that several runs
share (the same config but for the seed: the spread over seeds).

Bookkeeping keys (``IGNORED``: where files go, progress bars, the machine's addresses) never count as a difference.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recforge.report.runs import Run
from recforge.report.tables import plain

IGNORED = frozenset(
    {"checkpoint_dir", "data_path", "state", "show_progress", "use_gpu", "gpu_id", "ip", "port", "offset"}
    | {"tensorboard", "data_cache", "model", "dataset"}
)
ABBREVIATIONS = {"learning_rate": "lr", "embedding_size": "emb", "train_batch_size": "batch", "weight_decay": "wd"}
MAX_LABEL_KEYS = 3  # values named in a run's label
ABSENT = object()


def differing_keys(runs: Sequence[Run], exclude: Collection[str] = ()) -> list[str]:
    """The config keys, in order of first appearance, whose values differ between ``runs``; a key that some runs
    lack differs (LightGCN's ``n_layers`` against BPR, as the config table marks it). ``IGNORED`` keys and
    ``exclude`` are left out."""
    keys = dict.fromkeys(k for run in runs for k in run.config if k not in IGNORED and k not in exclude)
    return [k for k in keys if len({_value(run.config, k) for run in runs}) > 1]


def _value(config: Mapping[str, Any], key: str) -> str | object:
    return plain(config[key]) if key in config else ABSENT


def short_value(value: Any) -> str:
    """A value as a label shows it: 3 significant digits, a schedule by its name, long lists cut."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return value["name"]
    text = plain(value) if not isinstance(value, str) else value
    return text if len(text) <= 14 else text[:13] + "…"


def pair(key: str, value: Any) -> str:
    """``key=value`` as a label writes it (``lr=0.001``)."""
    return f"{ABBREVIATIONS.get(key, key)}={short_value(value)}"


def run_labels(runs: Sequence[Run], exclude: Collection[str] = ()) -> dict[str, str]:
    """A short label per run name: the model, the data set when they differ, the trial number of a study's trial
    (``#3``), up to ``MAX_LABEL_KEYS`` values of the keys that differ between the runs of the same model (the seed
    last; a key the run leaves unset, None, is not named) and a trial's state unless COMPLETE (``PRUNED``). Labels
    are unique: a label that two runs would share gets " (1)", " (2)" ..."""
    datasets = len({run.dataset for run in runs}) > 1
    by_model: dict[str, list[Run]] = {}
    for run in runs:
        by_model.setdefault(run.model, []).append(run)
    labels = {}
    for group in by_model.values():
        keys = differing_keys(group, exclude)
        keys.sort(key=lambda k: k == "seed")
        for run in group:
            parts = [run.model] + ([run.dataset] if datasets else [])
            if run.trial is not None:
                parts.append(f"#{run.trial.number}")
            parts += [pair(k, run.config[k]) for k in keys if run.config.get(k) is not None][:MAX_LABEL_KEYS]
            if run.trial is not None and run.trial.state != "COMPLETE":
                parts.append(run.trial.state)
            labels[run.name] = " ".join(parts)
    return _unique(labels)


def _unique(labels: dict[str, str]) -> dict[str, str]:
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    seen: dict[str, int] = {}
    unique = {}
    for name, label in labels.items():
        if counts[label] > 1:
            seen[label] = seen.get(label, 0) + 1
            label = f"{label} ({seen[label]})"
        unique[name] = label
    return unique


@dataclass(frozen=True)
class Configuration:
    """Runs with the same config but for the seed (and the ``IGNORED`` keys); ``label`` names the configuration
    (with "(n runs)" when there are several), ``colour`` is its first run's."""

    label: str
    colour: str
    runs: tuple[Run, ...]


def configuration_key(run: Run) -> str:
    """What runs of one configuration share: model, data set and every config key but the seed."""
    if not run.config:
        return f"run:{run.path}"  # no config.yaml: nothing to compare, a configuration of its own
    kept = {k: plain(v) for k, v in run.config.items() if k not in IGNORED and k != "seed"}
    return json.dumps([run.model, run.dataset, sorted(kept.items())])


def configurations(runs: Sequence[Run], colours: Mapping[str, str]) -> list[Configuration]:
    """The configurations of ``runs`` in the order of their first runs."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(configuration_key(run), []).append(run)
    first = [members[0] for members in groups.values()]
    labels = run_labels(first, exclude={"seed"})
    found = []
    for members in groups.values():
        label = labels[members[0].name] + (f" ({len(members)} runs)" if len(members) > 1 else "")
        found.append(Configuration(label, colours[members[0].name], tuple(members)))
    return found
