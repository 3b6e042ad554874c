"""Every package-level config key: RecBole's names, meanings and defaults, with a type each.

Models add their own keys (``Recommender.hyper_parameters``). RecBole keys that recforge accepts without using
them, and why, are in ``recforge.config.compat``.
"""

from __future__ import annotations

from typing import Any

from recforge.config.structs import (
    DISCRETIZATION,
    EVAL_ARGS,
    LR_SCHEDULER,
    NEG_SAMPLE_ARGS,
    ClipGradNorm,
    GpuId,
    Learner,
)
from recforge.config.types import Bool, Float, Int, Key, ListOf, Mapping_, Optional, Str

TRANSFORMS = ("mask_itemseq", "inverse_itemseq", "crop_itemseq", "reorder_itemseq", "user_defined")


def _keys(group: str, *entries: tuple[str, Any, Any, str]) -> list[Key]:
    return [Key(name, vtype, default, doc, group) for name, vtype, default, doc in entries]


PACKAGE_KEYS: list[Key] = [
    *_keys(
        "environment",
        ("model", Optional(Str()), None, "Model name (case-insensitive), e.g. BPR."),
        ("dataset", Optional(Str()), None, "Data set name: a folder <data_path>/<dataset>/ or a bundled one."),
        ("seed", Int(minimum=0), 2020, "Seed of every random number generator of the run."),
        ("reproducibility", Bool(), True, "Deterministic algorithms (cuDNN) for exactly repeatable runs."),
        ("state", Str(choices=("DEBUG", "INFO", "WARNING", "ERROR")), "INFO", "Logging level."),
        ("data_path", Str(), "dataset/", "Folder that holds <dataset>/<dataset>.inter and the other atomic files."),
        ("checkpoint_dir", Str(), "saved", "Folder under which each run writes its own run folder."),
        ("show_progress", Bool(), True, "Progress bars for training and evaluation (shown on terminals only)."),
        ("use_gpu", Bool(), True, "Use a CUDA device when one is available."),
        (
            "gpu_id",
            GpuId(),
            "0",
            "CUDA device(s) used when use_gpu is true ('0', or '0,1': the first is used); '' or '-1': none.",
        ),
        ("device", Optional(Str()), None, "Explicit torch device ('cpu', 'cuda:1'); overrides use_gpu/gpu_id."),
        ("nproc", Int(minimum=1), 1, "Processes on this machine for distributed training (recforge run starts them)."),
        (
            "world_size",
            Optional(Int(minimum=-1)),
            None,
            "Processes on all machines (none or -1: nproc); a multiple of nproc.",
        ),
        ("ip", Str(), "localhost", "Address of the machine running rank 0 (distributed training)."),
        ("port", Int(minimum=1, maximum=65535), 5678, "Free TCP port on that machine for the process group."),
        ("offset", Int(minimum=0), 0, "Rank of this machine's first process (machine index x nproc)."),
    ),
    *_keys(
        "training",
        ("epochs", Int(minimum=0), 300, "Maximum number of training epochs."),
        ("train_batch_size", Int(minimum=1), 2048, "Positive interactions per training batch."),
        ("learner", Learner(), "adam", "Optimizer."),
        ("learning_rate", Float(minimum=0.0), 0.001, "Learning rate (0 trains nothing, as in RecBole)."),
        ("weight_decay", Float(minimum=0.0), 0.0, "L2 penalty applied by the optimizer."),
        (
            "train_neg_sample_args",
            NEG_SAMPLE_ARGS,
            dict(NEG_SAMPLE_ARGS.defaults),
            "Training negatives: distribution, sample_num, alpha, dynamic, candidate_num; none (or distribution: "
            "none) for no sampling, read back as RecBole's {distribution: none, sample_num: none, ...}.",
        ),
        ("shuffle", Bool(), True, "Reshuffle the training interactions every epoch."),
        ("eval_step", Int(minimum=0), 1, "Validate every eval_step epochs and after the last one (0: never validate)."),
        (
            "stopping_step",
            Int(minimum=0),
            10,
            "Stop when more than this many validations in a row did not improve (0: at the first that does not).",
        ),
        (
            "clip_grad_norm",
            Optional(ClipGradNorm()),
            None,
            "Gradient clipping: a max norm, or the arguments of clip_grad_norm_ ({max_norm: 5, norm_type: 2}).",
        ),
        ("loss_decimal_place", Int(minimum=0), 4, "Decimal places of losses in logs."),
        ("require_pow", Bool(), False, "Square the embedding norms in EmbLoss (RecBole's reg loss)."),
        (
            "gradient_accumulation_steps",
            Int(minimum=1),
            1,
            "Batches whose gradients are summed (each loss divided by the group size) before one optimizer step.",
        ),
        (
            "lr_scheduler",
            LR_SCHEDULER,
            None,
            "Per-epoch learning-rate schedule: name (constant, step, multistep, exponential, cosine, plateau) "
            "with its arguments, and an optional linear warm-up (warmup_epochs, warmup_start_factor).",
        ),
        (
            "precision",
            Optional(Str(choices=("fp32", "bf16", "fp16"))),
            None,
            "Training precision; none: from enable_amp (fp16 on CUDA, bf16 elsewhere) or fp32.",
        ),
        ("enable_amp", Bool(), False, "RecBole's switch for mixed precision; see precision."),
        (
            "enable_scaler",
            Optional(Bool()),
            None,
            "GradScaler for mixed precision; none: on exactly when precision is fp16.",
        ),
        ("tensorboard", Bool(), False, "Write TensorBoard scalars to <run_dir>/tensorboard (extra: tensorboard)."),
    ),
    *_keys(
        "evaluation",
        (
            "eval_args",
            EVAL_ARGS,
            dict(EVAL_ARGS.defaults),
            "Split (RS ratios, divided by their sum as in RecBole: [8, 1, 1] is [0.8, 0.1, 0.1], a 0 part is empty; "
            "or LS leave-one-out), group_by (user or none), order (RO random, TO by time), mode (one for both "
            "phases, or {valid: ..., test: ...}; a phase left out takes the other's).",
        ),
        (
            "metrics",
            ListOf(Str(), min_length=1),
            ["Recall", "MRR", "NDCG", "Hit", "Precision"],
            "Metrics to compute (case-insensitive).",
        ),
        ("topk", ListOf(Int(minimum=1), min_length=1), [10], "Cut-offs k of the ranking metrics."),
        (
            "valid_metric",
            Str(),
            "MRR@10",
            "Metric that selects the best epoch and drives early stopping; unset, it follows metrics and topk "
            "(the first k when 10 is not computed, the first metric when MRR is not).",
        ),
        (
            "valid_metric_bigger",
            Bool(),
            True,
            "Whether a bigger valid_metric is better; unset, from the metric (false for LogLoss, MAE, RMSE), as in "
            "RecBole.",
        ),
        (
            "eval_batch_size",
            Int(minimum=1),
            4096,
            "Users per full-ranking evaluation batch (RecBole counts user x item cells instead).",
        ),
        (
            "eval_tie_break",
            Str(choices=("lowest_id", "torch_topk")),
            "lowest_id",
            "Order of equal scores in top-k lists: lower item id first (reproducible on every device), or "
            "torch.topk's own order (what RecBole reports; it can differ between devices and versions).",
        ),
        ("metric_decimal_place", Int(minimum=0), 4, "Decimal places of metrics in logs and tables (display only)."),
        (
            "tail_ratio",
            Float(minimum=0.0, exclusive_minimum=True),
            0.1,
            "Long-tail items of TailPercentage: a share of the items (<= 1) or a maximum interaction count (> 1).",
        ),
    ),
    *_keys(
        "data",
        ("field_separator", Str(), "\t", "Column separator of the atomic files."),
        ("seq_separator", Str(), " ", "Separator of values inside token_seq / float_seq columns."),
        ("USER_ID_FIELD", Str(), "user_id", "Name of the user id column."),
        ("ITEM_ID_FIELD", Str(), "item_id", "Name of the item id column."),
        ("RATING_FIELD", Optional(Str()), "rating", "Name of the rating column."),
        ("TIME_FIELD", Optional(Str()), "timestamp", "Name of the time column (needed by order TO)."),
        ("LABEL_FIELD", Str(), "label", "Name of the label column made by threshold."),
        ("NEG_PREFIX", Str(), "neg_", "Prefix of the negative-item column in pairwise batches."),
        ("HEAD_ENTITY_ID_FIELD", Str(), "head_id", "Head entity column of .kg files."),
        ("TAIL_ENTITY_ID_FIELD", Str(), "tail_id", "Tail entity column of .kg files."),
        ("RELATION_ID_FIELD", Str(), "relation_id", "Relation column of .kg files."),
        ("ENTITY_ID_FIELD", Str(), "entity_id", "Entity column of .link files."),
        (
            "load_col",
            Optional(Mapping_()),
            {"inter": ["user_id", "item_id"]},
            "Columns to load per file suffix ({inter: [user_id, item_id], item: true}); a suffix left out is not "
            "read; none loads every column of every file.",
        ),
        ("unload_col", Optional(Mapping_()), None, "Columns not to load per file suffix."),
        (
            "threshold",
            Optional(Mapping_(Float())),
            None,
            "Binary labels from a column: {rating: 4} makes label = rating >= 4.",
        ),
        (
            "rm_dup_inter",
            Optional(Str(choices=("first", "last"))),
            None,
            "Remove repeated (user, item) interactions, keeping the first or the last.",
        ),
        (
            "val_interval",
            Optional(Mapping_()),
            None,
            "Keep interactions whose values lie in intervals: {rating: '[3,inf)'}.",
        ),
        (
            "filter_inter_by_user_or_item",
            Bool(),
            True,
            "Drop interactions whose user or item was removed by a .user / .item filter.",
        ),
        (
            "user_inter_num_interval",
            Optional(Str()),
            "[0,inf)",
            "Keep users whose interaction count lies in this interval (applied with the item one to a fixed point).",
        ),
        (
            "item_inter_num_interval",
            Optional(Str()),
            "[0,inf)",
            "Keep items whose interaction count lies in this interval.",
        ),
        (
            "benchmark_filename",
            Optional(ListOf(Str(), min_length=2)),
            None,
            "A split fixed in files, [train, valid, test] or [train, test]: reads <dataset>.<part>.inter per part "
            "instead of <dataset>.inter, filters them together and uses them as the split (not eval_args.split).",
        ),
        (
            "unused_col",
            Optional(Mapping_(ListOf(Str()))),
            None,
            "Columns per file suffix that are loaded (for filtering and ordering) but dropped after the split.",
        ),
        ("alias_of_user_id", Optional(ListOf(Str())), None, "Fields remapped with the user id vocabulary."),
        ("alias_of_item_id", Optional(ListOf(Str())), None, "Fields remapped with the item id vocabulary."),
        (
            "additional_feat_suffix",
            Optional(ListOf(Str())),
            None,
            "Extra atomic files <dataset>.<suffix> read per load_col (Dataset.<suffix>_feat), e.g. [ent, rel].",
        ),
        ("alias_of_entity_id", Optional(ListOf(Str())), None, "Fields remapped with the .kg file's entities."),
        ("alias_of_relation_id", Optional(ListOf(Str())), None, "Fields remapped with the .kg file's relations."),
        ("kg_reverse_r", Bool(), False, "Add every triple reversed, under a relation '<name>_r'."),
        (
            "entity_kg_num_interval",
            Optional(Str()),
            None,
            "Keep entities whose number of triples (as head plus as tail) lies in this interval (to a fixed point).",
        ),
        ("relation_kg_num_interval", Optional(Str()), None, "Keep relations whose number of triples lies in this."),
        (
            "preload_weight",
            Optional(Mapping_(Str())),
            None,
            "Id field -> float / float_seq field of the same file: an id-indexed matrix (Dataset.get_preload_weight).",
        ),
        ("normalize_field", Optional(ListOf(Str())), None, "Float columns min-max scaled to [0, 1]."),
        (
            "numerical_features",
            Optional(ListOf(Str())),
            [],
            "Float / float_seq columns that context-aware models use as features (embedded as value x vector, or per "
            "bucket with discretization).",
        ),
        ("normalize_all", Optional(Bool()), None, "Min-max scale every float column (not with normalize_field)."),
        (
            "discretization",
            DISCRETIZATION,
            None,
            "Float / float_seq columns of numerical_features -> {method: ED, bucket: N} (equal-width buckets) or "
            "{method: LD} (logarithmic): context-aware models embed each bucket, trees read the bucket ids.",
        ),
        (
            "data_cache",
            Bool(),
            True,
            "Keep processed data sets in $RECFORGE_CACHE_DIR (~/.cache/recforge); --no-cache turns it off.",
        ),
    ),
    *_keys(
        "sequential",
        (
            "MAX_ITEM_LIST_LENGTH",
            Int(minimum=1),
            50,
            "Sequential models: the most recent items of a history a model reads (longer histories are cut).",
        ),
        ("ITEM_LIST_LENGTH_FIELD", Str(), "item_length", "Sequential models: the column of each history's length."),
        ("LIST_SUFFIX", Str(), "_list", "Sequential models: suffix of the history columns (item_id_list, ...)."),
        ("POSITION_FIELD", Str(), "position_id", "Sequential models: name of the position column (RecBole's)."),
        (
            "transform",
            Optional(Str(choices=TRANSFORMS)),
            None,
            "A transform of every batch's item histories (RecBole's recbole.data.transform): mask_itemseq "
            "(BERT4Rec's cloze), inverse_itemseq (right-aligned), crop_itemseq, reorder_itemseq, user_defined.",
        ),
        ("eta", Float(minimum=0.0, maximum=1.0), 0.6, "crop_itemseq: the share of a history a crop keeps."),
        ("beta", Float(minimum=0.0, maximum=1.0), 0.6, "reorder_itemseq: the share of a history that is shuffled."),
        (
            "train_all_positions",
            Bool(),
            False,
            "Sequential models with per-position outputs (SASRec, GRU4Rec): train on the next item at every position "
            "of each user's sequence (one sequence per user and MAX_ITEM_LIST_LENGTH items; train_batch_size counts "
            "sequences) instead of one example per prefix (RecBole's).",
        ),
        (
            "mask_history_items",
            Bool(),
            False,
            "Sequential evaluation: leave the items a user had before the target out of the ranking (the protocol "
            "of most papers); false ranks them, as RecBole does.",
        ),
    ),
]
