"""``data_preparation``: a processed data set split into its training loader and evaluation loaders.

Evaluation follows ``eval_args.mode`` per phase (full ranking, sampled ranking, labelled rows); the loaders are in
``recforge.data.loaders`` (and ``recforge.data.loaders.knowledge`` for knowledge-aware models).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from recforge.data.cache.splits import PreparedCache
from recforge.data.dataset import Dataset
from recforge.data.loaders import FullSortEvalDataLoader, LabeledEvalDataLoader, SampledEvalDataLoader, TrainDataLoader
from recforge.data.loaders.view import PHASE_SEEDS
from recforge.data.split.history import UserHistory
from recforge.data.split.sampler import NegativeSampler
from recforge.errors import ConfigError, DataError
from recforge.utils.memory import release_free_memory

logger = logging.getLogger("recforge")


def training_sampler(config: Mapping[str, Any], train: Dataset, history: UserHistory) -> NegativeSampler | None:
    """The training sampler the config asks for (popularity from the training split), or None."""
    args = config["train_neg_sample_args"]
    if not args:
        return None
    counts = train.item_counts if args["distribution"] == "popularity" else None
    return NegativeSampler(history, args["distribution"], counts, args["alpha"])


def _eval_loader(
    config,
    phase: str,
    split: Dataset,
    before: Callable[[], UserHistory],
    item_counts: np.ndarray,
    seen_counts: np.ndarray,
    prepared: PreparedCache,
):
    """The loader of one evaluation phase; ``before()`` gives the users' items of the earlier splits (called only
    when a history must be computed, not read from ``prepared``)."""
    mode = config["eval_args"]["mode"][phase]
    if mode == "labeled":
        loader = LabeledEvalDataLoader(config, split)
        loader.phase = phase
        return loader
    positives = prepared.history(f"{phase}/positives", lambda: UserHistory.from_datasets(split))
    if mode == "full":
        mask = prepared.history(f"{phase}/mask", lambda: before().minus(positives))
        loader = FullSortEvalDataLoader(config, split, None, item_counts, positives=positives, mask=mask)
    else:
        exclude = prepared.history(f"{phase}/exclude", lambda: before().union(positives))
        distribution = "uniform" if mode.startswith("uni") else "popularity"
        counts = seen_counts + split.item_counts if distribution == "popularity" else None
        sampler = NegativeSampler(exclude, distribution, counts)
        seed = config["seed"] * 1000 + PHASE_SEEDS[phase]
        loader = SampledEvalDataLoader(
            config, split, exclude, int(mode[3:]), sampler, seed, item_counts, positives=positives
        )
    loader.phase = phase
    return loader


def data_preparation(config: Mapping[str, Any], dataset: Dataset) -> tuple[TrainDataLoader, Any, Any]:
    """Split ``dataset`` and build ``(train_data, valid_data, test_data)``; an empty split gives None.

    Evaluation follows ``eval_args.mode`` per phase: full ranking masks each user's items from earlier splits;
    uniN / popN rank the positives against N sampled negatives each (drawn once); labeled scores each
    interaction against its label. The split and the histories are cached beside the processed data
    (``recforge.data.cache.splits``); when they were just computed and stored, the loaders are built again
    from the stored copy, mapped from disk, so that the computed arrays leave memory.
    """
    if max(config["topk"]) > dataset.item_num - 1:
        raise ConfigError(
            f"config key 'topk': {max(config['topk'])} exceeds the number of items ({dataset.item_num - 1})"
        )
    _note_benchmark_files(config, dataset)
    prepared = PreparedCache.for_dataset(dataset)
    loaders = _build_loaders(config, dataset, prepared)
    if prepared.computed and prepared.save():
        path = prepared.path
        del loaders, prepared
        release_free_memory()
        loaders = _build_loaders(config, dataset, PreparedCache(path))
    release_free_memory()
    return loaders


def _note_benchmark_files(config: Mapping[str, Any], dataset: Dataset) -> None:
    """Log that ``benchmark_filename``'s files are the split, and that eval_args' split, group_by and order are not
    used when eval_args was set by the user (not only by defaults)."""
    if not config.get("benchmark_filename"):
        return
    logger.info(
        "the split is given by the files %s (benchmark_filename)", ", ".join(p.name for p in dataset.inter_files())
    )
    source = config.source("eval_args") if hasattr(config, "source") else "defaults"
    if not source.endswith("defaults") and source != "derived":
        logger.info(
            "eval_args.split, group_by and order (eval_args set in %s) are not used: benchmark_filename gives the "
            "split; eval_args.mode still applies",
            source,
        )


def _build_sequential_loaders(config: Mapping[str, Any], dataset: Dataset):
    """The loaders of sequential data: training examples (negatives different from the target, for pairwise
    models), and examples ranked one by one (``recforge.data.loaders.sequential``); the transform on both."""
    from recforge.data.loaders.sequential import SequenceEvalDataLoader
    from recforge.data.split.sampler import TargetSampler
    from recforge.data.transform import construct_transform

    train, valid, test = dataset.build()
    if config.get("train_all_positions"):
        train = train.next_item_examples()
    transform = construct_transform(config) if config.get("transform") else None
    args = config["train_neg_sample_args"]
    sampler = None
    if args:
        sampler = TargetSampler(dataset.item_num, args["distribution"], train.item_counts, args["alpha"])
    train_data = TrainDataLoader(config, train, sampler, pointwise=False, transform=transform)  # negatives: a column
    item_counts = train.item_counts
    loaders = [train_data]
    for phase, split in (("valid", valid), ("test", test)):
        if not split.inter_num:
            loaders.append(None)
            continue
        mode = config["eval_args"]["mode"][phase]
        seed = config["seed"] * 1000 + PHASE_SEEDS[phase]
        if mode == "labeled":
            raise ConfigError(
                f"config key 'eval_args': mode {mode} is not possible for sequential models, which rank items; "
                "use full, uniN or popN"
            )
        phase_sampler, sample_num = None, 0
        if mode != "full":
            distribution = "uniform" if mode.startswith("uni") else "popularity"
            phase_sampler, sample_num = (
                TargetSampler(dataset.item_num, distribution, dataset.item_counts),
                int(mode[3:]),
            )
        loader = SequenceEvalDataLoader(
            config, split, item_counts, sampler=phase_sampler, sample_num=sample_num, seed=seed, transform=transform
        )
        loader.phase = phase
        loaders.append(loader)
    return tuple(loaders)


def _build_loaders(config: Mapping[str, Any], dataset: Dataset, prepared: PreparedCache):
    from recforge.utils.enum_type import InputType, ModelType

    model_class = getattr(config, "model_class", None)
    if model_class is not None and model_class.type == ModelType.SEQUENTIAL:
        return _build_sequential_loaders(config, dataset)
    train, valid, test = prepared.parts(dataset)
    train_history = prepared.history("train/positives", lambda: UserHistory.from_datasets(train))
    sampler = training_sampler(config, train, train_history)
    pairwise = model_class is None or model_class.input_type == InputType.PAIRWISE  # without a sampler (RecBole's
    # train_neg_sample_args: None) the batches hold positives only; training a pairwise model then refuses them
    trains_on_rows = model_class is not None and getattr(model_class, "trainable", True)
    loader_class = TrainDataLoader
    if model_class is not None and model_class.type == ModelType.KNOWLEDGE:
        from recforge.data.loaders.knowledge import KnowledgeBasedDataLoader

        loader_class = KnowledgeBasedDataLoader
    train_data = loader_class(config, train, sampler if trains_on_rows or pairwise else None, pointwise=not pairwise)
    if not pairwise and sampler is None and trains_on_rows and config["LABEL_FIELD"] not in train.inter_feat:
        raise DataError(
            f"{model_class.__name__} is trained on labelled rows, but there is no {config['LABEL_FIELD']!r} column "
            "and no negative sampling; set threshold (e.g. {rating: 4}) or train_neg_sample_args"
        )
    item_counts = train.item_counts
    valid_data = test_data = None
    if valid.inter_num:
        valid_data = _eval_loader(config, "valid", valid, lambda: train_history, item_counts, item_counts, prepared)
    if test.inter_num:
        seen_counts = item_counts + (valid.item_counts if valid.inter_num else 0)

        def seen() -> UserHistory:
            if not valid.inter_num:
                return train_history
            return train_history.union(prepared.history("valid/positives", lambda: UserHistory.from_datasets(valid)))

        test_data = _eval_loader(config, "test", test, seen, item_counts, seen_counts, prepared)
    return train_data, valid_data, test_data
