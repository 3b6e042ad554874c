"""Config values with structure, in the normal forms RecBole gives them: ``eval_args`` (split ratios divided by
their sum, a one-phase mode completed from the other phase), ``train_neg_sample_args`` (``~`` becomes RecBole's
"none" mapping), ``clip_grad_norm``, ``lr_scheduler``, and the ``learner`` and ``gpu_id`` scalars."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from recforge.config.types import Anything, Bool, Float, Int, ListOf, Mapping_, Optional, Str, Struct, is_none
from recforge.errors import ConfigError

SPLIT_RATIO_TOLERANCE = 1e-6
LEAVE_ONE_OUT_MODES = ("valid_and_test", "test_only", "valid_only")
EVAL_MODE_SYNTAX = "full, labeled, uniN or popN (N sampled negatives per positive, e.g. uni100)"
LEARNERS = ("adam", "adamw", "sgd", "adagrad", "rmsprop", "sparse_adam")


def _parse_eval_mode(value: Any, key: str) -> str:
    mode = str(value).strip().lower()
    if mode in ("full", "labeled"):
        return mode
    match = re.fullmatch(r"(uni|pop)(\d+)", mode)
    if not match or int(match.group(2)) < 1:
        raise ConfigError(f"config key '{key}': {value!r} is not an evaluation mode; use {EVAL_MODE_SYNTAX}")
    return mode


def split_ratios(value: Any, key: str) -> list[float]:
    """RS ratios as fractions [train, valid, test]: divided by their sum as RecBole divides them (``[8, 1, 1]`` is
    ``[0.8, 0.1, 0.1]``; ratios that already sum to 1 are kept as given); two ratios are train and test. A 0 part
    is an empty split; the training part must not be empty."""
    ratios = ListOf(Float(minimum=0.0)).parse(value, key)
    if len(ratios) not in (2, 3):
        raise ConfigError(f"config key '{key}' needs 2 ratios (train, test) or 3 (train, valid, test), got {ratios}")
    if ratios[0] <= 0:
        raise ConfigError(
            f"config key '{key}': the train ratio must be > 0, got {ratios} (RecBole would train on the rounding "
            "remainders of the other parts, often nothing)"
        )
    total = sum(ratios)
    if abs(total - 1.0) > SPLIT_RATIO_TOLERANCE:
        ratios = [r / total for r in ratios]
    return [ratios[0], 0.0, ratios[1]] if len(ratios) == 2 else ratios


def _normalize_split(split: dict, key: str) -> dict:
    if len(split) != 1:
        raise ConfigError(
            f"config key '{key}' needs exactly one of RS (ratios) or LS (leave-one-out), got {split!r}; "
            "for example {RS: [0.8, 0.1, 0.1]} or {LS: valid_and_test}"
        )
    ((method, arg),) = split.items()
    method = str(method).upper()
    if method == "RS":
        return {"RS": split_ratios(arg, f"{key}.RS")}
    if method == "LS":
        return {"LS": Str(choices=LEAVE_ONE_OUT_MODES).parse(arg, f"{key}.LS")}
    raise ConfigError(f"config key '{key}': unknown split method {method!r}; use RS (ratios) or LS (leave-one-out)")


def _normalize_mode(mode: Any, key: str) -> dict[str, str]:
    """``mode`` as {valid, test}: one name for both, or a mapping whose missing phase takes the given one's mode
    (RecBole's rule: ``{valid: uni100}`` tests with uni100 too)."""
    if isinstance(mode, str):
        mode = {"valid": mode, "test": mode}
    elif isinstance(mode, Mapping):
        unknown = set(mode) - {"valid", "test"}
        if unknown:
            raise ConfigError(f"config key '{key}' accepts the fields valid and test, not {sorted(unknown)}")
        either = mode.get("valid", mode.get("test", "full"))
        mode = {"valid": mode.get("valid", either), "test": mode.get("test", either)}
    else:
        raise ConfigError(f"config key '{key}' must be a mode name or {{valid: ..., test: ...}}")
    return {phase: _parse_eval_mode(value, f"{key}.{phase}") for phase, value in mode.items()}


def _normalize_eval_args(args: dict, key: str) -> dict:
    args["split"] = _normalize_split(args["split"], f"{key}.split")
    args["mode"] = _normalize_mode(args["mode"], f"{key}.mode")
    if "LS" in args["split"] and args["group_by"] is None:
        raise ConfigError(
            f"config key '{key}': leave-one-out (LS) splits each user's history, so it needs group_by: user"
        )
    return args


EVAL_ARGS = Struct(
    fields={
        "split": Mapping_(),
        "group_by": Optional(Str(choices=("user",))),
        "order": Str(choices=("RO", "TO")),
        "mode": Anything(),
    },
    defaults={"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "RO", "mode": "full"},
    normalize=_normalize_eval_args,
)


class NoSampling(dict):
    """``train_neg_sample_args`` without negative sampling, in RecBole's form (``{distribution: none, ...}``).

    It equals RecBole's mapping and is false in a boolean test, like the ``~`` it stands for, so code that asks
    ``if config["train_neg_sample_args"]`` reads it as "no sampling". Saved configs hold ``~``.
    """

    def __init__(self) -> None:
        super().__init__(distribution="none", sample_num="none", alpha="none", dynamic=False, candidate_num=0)

    def __bool__(self) -> bool:
        return False


def plain_value(value: Any) -> Any:
    """``value`` as plain YAML / JSON data (the form of saved configs); ``NoSampling`` is saved as ``~``."""
    if isinstance(value, NoSampling):
        return None
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class NegSampleArgs(Struct):
    """``train_neg_sample_args``: a mapping completed from RecBole's defaults, or no sampling (``~``, ``None``,
    or a mapping whose distribution is none), which becomes ``NoSampling``."""

    def parse(self, value: Any, key: str) -> dict:
        if isinstance(value, str):
            value = None if is_none(value) else Anything().parse(value, key)
        if value is None or (isinstance(value, Mapping) and "distribution" in value and is_none(value["distribution"])):
            return NoSampling()
        return super().parse(value, key)

    def describe(self) -> str:
        return f"{super().describe()}, or none (no negative sampling)"


NEG_SAMPLE_ARGS = NegSampleArgs(
    fields={
        "distribution": Str(choices=("uniform", "popularity")),
        "sample_num": Int(minimum=1),
        "alpha": Float(minimum=0.0),
        "dynamic": Bool(),
        "candidate_num": Int(minimum=0),
    },
    defaults={"distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False, "candidate_num": 0},
)


class Learner(Str):
    """``learner``: an optimizer name; an unknown one is an error that says what RecBole does with it."""

    def __init__(self) -> None:
        super().__init__(choices=LEARNERS)

    def parse(self, value: Any, key: str) -> str:
        try:
            return super().parse(value, key)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (RecBole would warn and train with Adam, without weight decay)") from None


class GpuId(Anything):
    """``gpu_id``: RecBole's string of CUDA device ids ("0", "0,1"); a number or a list of them is joined."""

    def parse(self, value: Any, key: str) -> str:
        if value is None:
            return ""  # RecBole writes it to CUDA_VISIBLE_DEVICES as "None": no device
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v).strip() for v in value)
        if isinstance(value, (bool, Mapping)):
            raise self._fail(value, key)
        return str(value).strip()

    def describe(self) -> str:
        return "device ids like '0' or '0,1' (RecBole's CUDA_VISIBLE_DEVICES form)"


class ClipGradNorm(Anything):
    """``clip_grad_norm``: a max norm, or keyword arguments of ``torch.nn.utils.clip_grad_norm_``."""

    ARGUMENTS = ("max_norm", "norm_type", "error_if_nonfinite", "foreach")

    def parse(self, value: Any, key: str) -> dict | None:
        value = super().parse(value, key)
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = {"max_norm": value}
        if not isinstance(value, dict) or "max_norm" not in value:
            raise self._fail(value, key)
        unknown = sorted(set(value) - set(self.ARGUMENTS))
        if unknown:
            raise ConfigError(f"config key '{key}': unknown argument(s) {unknown}; use {list(self.ARGUMENTS)}")
        value["max_norm"] = Float(minimum=0.0, exclusive_minimum=True).parse(value["max_norm"], f"{key}.max_norm")
        return value

    def describe(self) -> str:
        return "a max norm or a mapping like {max_norm: 5, norm_type: 2}"


LR_SCHEDULER = Optional(
    Struct(
        fields={
            "name": Str(choices=("constant", "step", "multistep", "exponential", "cosine", "plateau")),
            "step_size": Int(minimum=1),
            "milestones": ListOf(Int(minimum=1)),
            "gamma": Float(minimum=0.0, exclusive_minimum=True),
            "T_max": Optional(Int(minimum=1)),
            "eta_min": Float(minimum=0.0),
            "factor": Float(minimum=0.0, maximum=1.0, exclusive_minimum=True),
            "patience": Int(minimum=0),
            "threshold": Float(minimum=0.0),
            "cooldown": Int(minimum=0),
            "min_lr": Float(minimum=0.0),
            "warmup_epochs": Int(minimum=0),
            "warmup_start_factor": Float(minimum=0.0, maximum=1.0, exclusive_minimum=True),
        },
        defaults={
            "name": "constant",
            "step_size": 10,
            "milestones": [],
            "gamma": 0.1,
            "T_max": None,
            "eta_min": 0.0,
            "factor": 0.1,
            "patience": 10,
            "threshold": 1e-4,
            "cooldown": 0,
            "min_lr": 0.0,
            "warmup_epochs": 0,
            "warmup_start_factor": 0.1,
        },
    )
)


def _normalize_discretization(info: dict, key: str) -> dict:
    if info["method"] is None:
        raise ConfigError(f"config key '{key}' needs a method: ED (equal-width buckets) or LD (logarithmic)")
    if info["method"] == "ED" and info["bucket"] is None:
        raise ConfigError(f"config key '{key}': method ED needs the number of buckets (bucket: N)")
    return info


# One float column's bucketing (RecBole's ``discretization`` entries): ``{method: ED, bucket: N}`` or ``{method: LD}``.
DISCRETIZATION = Optional(
    Mapping_(
        Struct(
            fields={"method": Optional(Str(choices=("ED", "LD"))), "bucket": Optional(Int(minimum=1))},
            defaults={"method": None, "bucket": None},
            normalize=_normalize_discretization,
        )
    )
)
