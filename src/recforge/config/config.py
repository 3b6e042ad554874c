"""The run configuration: layered, typed, checked, and free of side effects.

Layers, lowest first (a later layer overrides an earlier one):

1. package defaults (``recforge.config.keys``)
2. the model's defaults (``Model.hyper_parameters``)
3. the data set's defaults (bundled data sets ship a ``<name>.yaml``)
4. YAML files (``config_file_list``), in order
5. a dict (``config_dict``)
6. command-line arguments (``--key=value`` or ``--key value``)

Mapping-valued keys with known fields (``eval_args``, ``train_neg_sample_args``) are merged field by field
across layers; every other key is replaced whole. Every value is parsed by its key's type, and an unknown key
is an error naming the closest known key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from recforge.config.keys import PACKAGE_KEYS, RECBOLE_IGNORED
from recforge.config.types import Key, Optional, Struct, parse_text
from recforge.errors import ConfigError, did_you_mean

logger = logging.getLogger("recforge")


def parse_command_line(argv: Iterable[str]) -> dict[str, str]:
    """Turn ``["--epochs=5", "--learner", "sgd", "--flag"]`` into ``{"epochs": "5", "learner": "sgd", "flag": "true"}``.

    Values stay strings; each key's type parses them later. A token that is not ``--key`` is an error.
    """
    out: dict[str, str] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or len(token) == 2:
            raise ConfigError(f"unexpected command-line argument {token!r}; config keys are given as --key value")
        name, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            else:
                value = "true"
        out[name] = value
        i += 1
    return out


def read_yaml_file(path: str | Path) -> dict[str, Any]:
    """Read one config file; a missing file, a YAML syntax error or a non-mapping is a ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"config file {path}{where}: invalid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of key: value, not a {type(data).__name__}")
    return data


def _is_struct(key: Key) -> bool:
    t = key.type
    return isinstance(t, Struct) or (isinstance(t, Optional) and isinstance(t.inner, Struct))


class Config(Mapping):
    """Resolved configuration of one run; read it like a dict (``config["learning_rate"]``).

    Args:
        model: model name or class; may also come from any layer as ``model``.
        dataset: data set name; may also come from any layer as ``dataset``.
        config_file_list: YAML files, applied in order.
        config_dict: a mapping of overrides.
        cmd_args: command-line overrides, a mapping of strings or a list like ``["--epochs", "5"]``.
        base_config: a resolved config to start from (a resumed run's), below the files, dict and command line.
    """

    def __init__(
        self,
        model: str | type | None = None,
        dataset: str | None = None,
        config_file_list: Iterable[str | Path] | None = None,
        config_dict: Mapping[str, Any] | None = None,
        cmd_args: Mapping[str, str] | Iterable[str] | None = None,
        base_config: Mapping[str, Any] | None = None,
    ) -> None:
        from recforge.data.registry import dataset_defaults
        from recforge.models.registry import all_model_keys, get_model_class

        layers: list[tuple[str, Mapping[str, Any]]] = []
        if base_config:
            layers.append(("the checkpoint's config", dict(base_config)))
        for path in config_file_list or []:
            layers.append((f"config file {path}", read_yaml_file(path)))
        if config_dict:
            layers.append(("config_dict", dict(config_dict)))
        if cmd_args is not None:
            if not isinstance(cmd_args, Mapping):
                cmd_args = parse_command_line(cmd_args)
            layers.append(
                (
                    "the command line",
                    {k: parse_text(v) if k in ("model", "dataset") else v for k, v in cmd_args.items()},
                )
            )

        model_name = self._pick("model", model, layers)
        if model_name is None:
            raise ConfigError("no model given: pass model='BPR' (or --model BPR, or 'model: BPR' in a config file)")
        model_class = model if isinstance(model, type) else get_model_class(str(model_name))
        dataset_name = self._pick("dataset", dataset, layers) or "ml-latest-small"

        self._keys: dict[str, Key] = {k.name: k for k in PACKAGE_KEYS}
        model_keys = {k.name: k for k in getattr(model_class, "hyper_parameters", ())}
        self._keys.update(model_keys)

        base: list[tuple[str, Mapping[str, Any]]] = [
            ("recforge defaults", {k.name: k.default for k in PACKAGE_KEYS}),
            (f"{model_class.__name__} defaults", {k.name: k.default for k in model_keys.values()}),
        ]
        data_defaults = dataset_defaults(dataset_name)
        if data_defaults:
            base.append((f"{dataset_name} defaults", data_defaults))

        other_model_keys = all_model_keys()
        raw: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for source, layer in base + layers:
            for name, value in layer.items():
                name = str(name)
                if name not in self._keys:
                    self._unknown(name, source, model_class.__name__, other_model_keys)
                    continue
                key = self._keys[name]
                if _is_struct(key) and isinstance(raw.get(name), Mapping) and isinstance(value, Mapping):
                    value = {**raw[name], **value}
                raw[name] = value
                sources[name] = source

        values: dict[str, Any] = {}
        for name, value in raw.items():
            try:
                values[name] = self._keys[name].type.parse(value, name)
            except ConfigError as exc:
                raise ConfigError(f"{exc} (set in {sources[name]})") from None
        values["model"] = model_class.__name__
        values["dataset"] = dataset_name
        self._values = values
        self._sources = sources
        self.model_class = model_class
        self._check()
        self._resolve_machine_dependent()

    # -- layering helpers --------------------------------------------------------------------------
    @staticmethod
    def _pick(name: str, explicit: Any, layers: list[tuple[str, Mapping[str, Any]]]) -> Any:
        if explicit is not None:
            return explicit
        value = None
        for _, layer in layers:
            if layer.get(name) is not None:
                value = layer[name]
        return value

    def _unknown(self, name: str, source: str, model_name: str, other_model_keys: Mapping[str, list[str]]) -> None:
        if name in RECBOLE_IGNORED:
            logger.warning("config key '%s' (%s) is ignored: %s", name, source, RECBOLE_IGNORED[name])
            return
        if name in other_model_keys:
            owners = ", ".join(other_model_keys[name])
            logger.warning(
                "config key '%s' (%s) is a hyper-parameter of %s, not of %s; ignored", name, source, owners, model_name
            )
            return
        known = list(self._keys) + list(other_model_keys)
        raise ConfigError(f"unknown config key '{name}' in {source}{did_you_mean(name, known)}")

    def _check(self) -> None:
        """Checks that span several keys. Every problem is reported when the config is read, not mid-run."""
        from recforge.data.intervals import parse_intervals
        from recforge.evaluation.metrics import check_metric_config

        v = self._values
        check_metric_config(v["metrics"], v["topk"], v["valid_metric"], v["eval_args"]["mode"])
        if v["eval_args"]["order"] == "TO" and not v["TIME_FIELD"]:
            raise ConfigError("eval_args.order TO sorts interactions by time, but TIME_FIELD is none")
        for key in ("user_inter_num_interval", "item_inter_num_interval"):
            parse_intervals(v[key], key)
        for field, allowed in (v["val_interval"] or {}).items():
            if isinstance(allowed, str):
                parse_intervals(allowed, f"val_interval.{field}")
            elif not isinstance(allowed, list):
                raise ConfigError(
                    f"config key 'val_interval.{field}': {allowed!r} is neither an interval like '[3,inf)' "
                    "(float columns) nor a list of tokens (token columns)"
                )
        if v["normalize_field"] and v["normalize_all"]:
            raise ConfigError("normalize_field and normalize_all cannot both be set; use one of them")

    def _resolve_machine_dependent(self) -> None:
        """Fix ``device``, then ``precision`` and ``enable_scaler`` (which depend on it) to concrete values."""
        self._values["device"] = self._resolve_device()
        v = self._values
        if self._sources.get("precision", "recforge defaults") == "recforge defaults" or v["precision"] is None:
            cuda = v["device"].startswith("cuda")
            v["precision"] = ("fp16" if cuda else "bf16") if v["enable_amp"] else "fp32"
        if self._sources.get("enable_scaler", "recforge defaults") == "recforge defaults" or v["enable_scaler"] is None:
            v["enable_scaler"] = v["precision"] == "fp16"

    def _resolve_device(self) -> str:
        import torch

        if self._values.get("device"):
            try:
                return str(torch.device(self._values["device"]))
            except RuntimeError as exc:
                raise ConfigError(f"config key 'device': {exc}") from None
        if self._values["use_gpu"] and torch.cuda.is_available():
            gpu = str(self._values["gpu_id"]).split(",")[0].strip() or "0"
            return f"cuda:{gpu}"
        return "cpu"

    # -- mapping interface -------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(f"unknown config key '{name}'{did_you_mean(name, self._values)}") from None

    def __setitem__(self, name: str, value: Any) -> None:
        """Set one key after construction (RecBole allows it); the value is parsed and checked as usual."""
        if name not in self._keys:
            raise ConfigError(f"unknown config key '{name}'{did_you_mean(name, self._keys)}")
        key = self._keys[name]
        if _is_struct(key) and isinstance(value, Mapping) and isinstance(self._values.get(name), Mapping):
            value = {**self._values[name], **value}
        self._values[name] = key.type.parse(value, name)
        self._sources[name] = "assignment"
        self._check()
        self._resolve_machine_dependent()

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def final_config_dict(self) -> dict[str, Any]:
        """RecBole's name for the resolved values."""
        return dict(self._values)

    def source(self, name: str) -> str:
        """Which layer set ``name`` last ("recforge defaults", "config file x.yaml", ...)."""
        return self._sources.get(name, "derived")

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML/JSON-safe values (the form saved in run folders and checkpoints)."""
        return {k: _plain(v) for k, v in self._values.items()}

    def save(self, path: str | Path) -> None:
        """Write the resolved config as YAML."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")

    def __str__(self) -> str:
        groups: dict[str, list[str]] = {}
        for name, value in self._values.items():
            group = self._keys[name].group if name in self._keys else "environment"
            groups.setdefault(group, []).append(f"  {name} = {value!r}")
        return "\n".join(f"[{g}]\n" + "\n".join(lines) for g, lines in groups.items())

    def __repr__(self) -> str:
        return f"Config(model={self['model']!r}, dataset={self['dataset']!r})"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
