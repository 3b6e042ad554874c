"""The run configuration: layered, typed, checked, and free of side effects.

Layers, lowest first (a later layer overrides an earlier one):

1. package defaults (``recforge.config.keys``)
2. the model's defaults (``Model.hyper_parameters``)
3. the data set's defaults (bundled data sets ship a ``<name>.yaml``)
4. a resumed run's saved config (``base_config``)
5. YAML files (``config_file_list``), in order
6. a dict (``config_dict``)
7. command-line arguments (``--key=value`` or ``--key value``); when ``cmd_args`` is None, the ``--key=value``
   arguments of the running script (``sys.argv``), as RecBole reads them

Mapping-valued keys with known fields (``eval_args``, ``train_neg_sample_args``) are merged field by field
across layers; every other key is replaced whole. Every value is parsed by its key's type. Keys that are not
recforge's are sorted as ``recforge.config.compat`` describes: RecBole keys without effect are accepted and
reported together in one warning, unknown keys are reported together in one error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from recforge.config.checks import check_config, check_processes, fit_metric_direction, fit_valid_metric
from recforge.config.compat import (
    LOAD_COL_NO_EFFECT,
    NO_EFFECT,
    RECBOLE_VALUES,
    is_recbole_default,
    legacy_neg_sampling,
    no_effect_reason,
    setting_keys,
    warn_ignored,
)
from recforge.config.families import (
    KNOWLEDGE_SUFFIXES,
    family_defaults,
    fit_sequential_keys,
    knowledge_defaults,
    reads_knowledge_graph,
)
from recforge.config.keys import PACKAGE_KEYS
from recforge.config.machine import resolve_device
from recforge.config.model_keys import all_model_keys
from recforge.config.sources import parse_command_line, read_yaml_file, script_arguments
from recforge.config.structs import plain_value
from recforge.config.types import Anything, Key, Optional, Struct, parse_text
from recforge.errors import ConfigError, did_you_mean
from recforge.registry import RECBOLE_MODELS, declared_keys, get_model_class, model_names, recbole_catalog
from recforge.registry.datasets import dataset_defaults
from recforge.utils.enum_type import InputType, ModelType

logger = logging.getLogger("recforge")

# How close an unknown key must be to a known one to be suggested (difflib ratio).
SUGGESTION_CUTOFF = 0.8
# Files recforge reads for load_col / unload_col / unused_col.
FEATURE_SUFFIXES = ("inter", "user", "item")


def _is_struct(key: Key) -> bool:
    t = key.type
    return isinstance(t, Struct) or (isinstance(t, Optional) and isinstance(t.inner, Struct))


@dataclass
class _Layer:
    source: str
    values: Mapping[str, Any]
    strict: bool = True  # False for the script's own command line: unknown keys there are reported, not errors


class Config(Mapping):
    """Resolved configuration of one run; read it like a dict (``config["learning_rate"]``).

    Args:
        model: model name or class; may also come from any layer as ``model``.
        dataset: data set name; may also come from any layer as ``dataset``.
        config_file_list: YAML files, applied in order.
        config_dict: a mapping of overrides.
        cmd_args: command-line overrides, a mapping of strings or a list like ``["--epochs", "5"]``; None reads
            the script's own ``--key=value`` arguments as RecBole does (pass ``[]`` to read none).
        base_config: a resolved config to start from (a resumed run's), below the files, dict and command line.

    Besides the keys, ``config["MODEL_TYPE"]``, ``config["MODEL_INPUT_TYPE"]`` and ``config["single_spec"]``
    answer as in RecBole (derived, not saved), and so do RecBole's keys without effect (``config["worker"]``: the
    value given, else RecBole's). ``ignored_keys`` maps each accepted-but-unused key to the reason.
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
        layers = self._layers(config_file_list, config_dict, cmd_args, base_config)
        model_name = self._pick("model", model, layers)
        if model_name is None:
            raise ConfigError("no model given: pass model='BPR' (or --model BPR, or 'model: BPR' in a config file)")
        model_class = model if isinstance(model, type) else get_model_class(str(model_name))
        dataset_name = self._pick("dataset", dataset, layers) or "ml-latest-small"
        self.model_class = model_class
        declared = declared_keys(model_class)
        self._free = declared is None
        self._keys: dict[str, Key] = {k.name: k for k in PACKAGE_KEYS}
        model_keys = {k.name: k for k in declared or ()}
        self._keys.update(model_keys)
        self.ignored_keys: dict[str, str] = {}
        self._ignored_sources: dict[str, list[str]] = {}
        self._recbole_only: dict[str, Any] = {}  # values given to keys of NO_EFFECT, read back as RecBole would

        base = [
            _Layer("recforge defaults", {k.name: k.default for k in PACKAGE_KEYS}),
            _Layer(f"{model_class.__name__} defaults", {k.name: k.default for k in model_keys.values()}),
        ]
        data_defaults = dataset_defaults(dataset_name)
        if data_defaults:
            base.append(_Layer(f"{dataset_name} defaults", data_defaults))
        if self.knowledge_aware:
            below = [layer.values for layer in base]
            base.append(_Layer("knowledge-aware defaults", knowledge_defaults(below, model_class)))
        user_eval_args = [layer.values["eval_args"] for layer in layers if "eval_args" in layer.values]
        for source, values in family_defaults(
            getattr(model_class, "type", None), dataset_name, user_eval_args, model_class
        ):
            base.append(_Layer(source, values))
        self._defaults_sources = {layer.source for layer in base}
        raw, sources = self._collect(base + layers)

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
        self._derived = self._derive()
        self._note_unread_files()
        self._check()
        check_processes(self._values, self.model_class)
        self._resolve_machine_dependent()
        warn_ignored(self.ignored_keys, self._ignored_sources)

    # -- layering ----------------------------------------------------------------------------------
    @staticmethod
    def _layers(config_file_list, config_dict, cmd_args, base_config) -> list[_Layer]:
        layers: list[_Layer] = []
        if base_config:
            layers.append(_Layer("the checkpoint's config", dict(base_config)))
        for path in config_file_list or []:
            layers.append(_Layer(f"config file {path}", read_yaml_file(path)))
        if config_dict:
            layers.append(_Layer("config_dict", dict(config_dict)))
        strict = cmd_args is not None
        if cmd_args is None:
            cmd_args, unused = script_arguments()
            if unused:
                logger.warning("command-line arguments %s are not config keys (--key=value) and are not used", unused)
        elif not isinstance(cmd_args, Mapping):
            cmd_args = parse_command_line(cmd_args)
        if cmd_args:
            parsed = {k: parse_text(v, k) if k in ("model", "dataset") else v for k, v in cmd_args.items()}
            layers.append(_Layer("the command line", parsed, strict))
        return layers

    @staticmethod
    def _pick(name: str, explicit: Any, layers: list[_Layer]) -> Any:
        if explicit is not None:
            return explicit
        value = None
        for layer in layers:
            if layer.values.get(name) is not None:
                value = layer.values[name]
        return value

    def _collect(self, layers: list[_Layer]) -> tuple[dict[str, Any], dict[str, str]]:
        """Merge the layers' values of known keys; sort out the other keys (see ``_admit``); raise one
        ConfigError naming every unknown key."""
        raw: dict[str, Any] = {}
        sources: dict[str, str] = {}
        unknown: dict[str, list[str]] = {}
        others = all_model_keys(exclude=self.model_class)
        for layer in layers:
            owner = self._other_model_file(layer)
            for name, value in layer.values.items():
                name = str(name)
                if owner is not None:  # RecBole's model/<Model>.yaml of another model: that model's settings
                    why = f"hyper-parameter of RecBole's {owner} (its model file), not of {self.model_class.__name__}"
                    self._ignore(name, why, layer.source)
                    continue
                if name == "neg_sampling" and "train_neg_sample_args" not in layer.values:
                    name, value = "train_neg_sample_args", legacy_neg_sampling(value, layer.source)
                if name not in self._keys and not self._admit(name, value, layer, others):
                    unknown.setdefault(name, []).append(layer.source)
                    continue
                if name not in self._keys:
                    continue
                key = self._keys[name]
                if _is_struct(key) and isinstance(raw.get(name), Mapping) and isinstance(value, Mapping):
                    value = {**raw[name], **value}
                raw[name] = value
                sources[name] = layer.source
        if unknown:
            raise ConfigError(self._unknown_message(unknown, others))
        return raw, sources

    def _admit(self, name: str, value: Any, layer: _Layer, others: Mapping[str, list[tuple[str, Key]]]) -> bool:
        """Decide about a key that is neither a package key nor declared by the model; False means unknown.

        A key another recforge model declares is kept with that model's type (a custom model may read it). A
        model that declares no keys reads free keys, as in RecBole. A RecBole key without effect is accepted and
        noted. The script's own command line only notes what it cannot use.
        """
        if name in ("model", "dataset"):
            return True
        if name in others:
            if self.model_class.__module__.startswith("recforge."):  # a built-in model: it surely does not read it
                owners = ", ".join(sorted({o for o, _ in others[name]}))
                self._ignore(name, f"hyper-parameter of {owners}, not of {self.model_class.__name__}", layer.source)
            else:
                key = others[name][0][1]
                self._keys[name] = Key(name, key.type, None, key.doc, "model")
            return True
        source_model = Path(layer.source.removeprefix("config file ")).stem
        reason = no_effect_reason(name, {m.lower() for m in model_names()}, source_model)
        if reason is not None and not (self._free and name not in setting_keys()):
            if not is_recbole_default(name, value):
                self._ignore(name, reason, layer.source)
            if name in NO_EFFECT:
                self._recbole_only[name] = Anything().parse(value, name)
            return True
        if self._free and not self._typo(name):
            self._keys[name] = Key(name, Anything(), None, f"free key read by {self.model_class.__name__}", "model")
            return True
        if not layer.strict:
            self._ignore(name, "not a config key; the script's command-line argument is not used", layer.source)
            return True
        return False

    def _other_model_file(self, layer: _Layer) -> str | None:
        """The RecBole model whose own ``model/<Model>.yaml`` the layer is, when it is another model than the one
        configured (the file holds only that model's hyper-parameters, so none of them applies here)."""
        if not layer.source.startswith("config file "):
            return None
        name = RECBOLE_MODELS.get(Path(layer.source.removeprefix("config file ")).stem.lower())
        if name is None or name.lower() == self.model_class.__name__.lower():
            return None
        return name if set(map(str, layer.values)) <= set(recbole_catalog.MODEL_KEYS[name]) else None

    def _typo(self, name: str) -> bool:
        """Whether a free key is so close to a package key that it is almost surely a typo of it."""
        return bool(did_you_mean(name, self._keys, cutoff=0.9))

    def _unknown_message(self, unknown: Mapping[str, list[str]], others: Mapping[str, Any]) -> str:
        known = [*self._keys, *others]
        parts = [
            f"'{name}' in {' and '.join(dict.fromkeys(where))}{did_you_mean(name, known, cutoff=SUGGESTION_CUTOFF)}"
            for name, where in unknown.items()
        ]
        if len(parts) == 1:
            return f"unknown config key {parts[0]}"
        return f"unknown config keys: {'; '.join(parts)}"

    def _ignore(self, name: str, reason: str, source: str) -> None:
        self.ignored_keys[name] = reason
        self._ignored_sources.setdefault(name, [])
        if source not in self._ignored_sources[name]:
            self._ignored_sources[name].append(source)

    @property
    def knowledge_aware(self) -> bool:
        """Whether the model reads the .kg and .link files (``families.reads_knowledge_graph``)."""
        return reads_knowledge_graph(self.model_class)

    def _note_unread_files(self) -> None:
        """load_col / unload_col / unused_col entries for files recforge does not read."""
        read = FEATURE_SUFFIXES + (KNOWLEDGE_SUFFIXES if self.knowledge_aware else ())
        read += tuple(self._values.get("additional_feat_suffix") or ())
        for key in ("load_col", "unload_col", "unused_col"):
            for suffix in self._values.get(key) or {}:
                if suffix in read:
                    continue
                reason = LOAD_COL_NO_EFFECT.get(suffix, f"the .{suffix} file is not read (no model here uses it)")
                self._ignore(f"{key}.{suffix}", reason, self._sources.get(key, "?"))

    def _check(self) -> None:
        """Fit the defaults that follow other keys (valid_metric, valid_metric_bigger), then check across keys."""

        def user_set(name: str) -> bool:
            return self._sources.get(name) not in self._defaults_sources

        fit_valid_metric(self._values, user_set)
        if getattr(self.model_class, "type", None) == ModelType.SEQUENTIAL:
            fit_sequential_keys(self._values, user_set, lambda name: self._sources.get(name, "recforge defaults"))
        check_config(self._values)
        fit_metric_direction(self._values, user_set)

    def _derive(self) -> dict[str, Any]:
        """RecBole's derived entries (not saved with the config)."""
        return {
            "MODEL_TYPE": getattr(self.model_class, "type", ModelType.GENERAL),
            "MODEL_INPUT_TYPE": getattr(self.model_class, "input_type", InputType.PAIRWISE),
            "single_spec": True,
        }

    def _resolve_machine_dependent(self) -> None:
        """Fix ``device``, then ``precision`` and ``enable_scaler`` (which depend on it) to concrete values."""
        self._values["device"] = resolve_device(self._values)
        v = self._values
        if self._sources.get("precision", "recforge defaults") == "recforge defaults" or v["precision"] is None:
            cuda = v["device"].startswith("cuda")
            v["precision"] = ("fp16" if cuda else "bf16") if v["enable_amp"] else "fp32"
        if self._sources.get("enable_scaler", "recforge defaults") == "recforge defaults" or v["enable_scaler"] is None:
            v["enable_scaler"] = v["precision"] == "fp16"

    # -- mapping interface -------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        if name in self._derived:
            return self._derived[name]
        if name in NO_EFFECT:
            return self._recbole_only.get(name, RECBOLE_VALUES[name])
        if name in self._keys or self._free:
            raise KeyError(
                f"config key '{name}' is not set: {self['model']} reads it but no layer gives it a value; set it "
                f"(--{name} VALUE, a config file or config_dict) or declare it with a default in hyper_parameters"
            )
        raise KeyError(f"unknown config key '{name}'{did_you_mean(name, self._values)}")

    def __contains__(self, name: object) -> bool:
        return name in self._values or name in self._derived

    def __setitem__(self, name: str, value: Any) -> None:
        """Set one key after construction (RecBole allows it); the value is parsed and checked as usual (a RecBole
        key without effect is kept as given, read back by ``config[name]``)."""
        if name in NO_EFFECT and name not in self._keys:
            self._recbole_only[name] = value
            return
        if name not in self._keys:
            if not self._free:
                raise ConfigError(f"unknown config key '{name}'{did_you_mean(name, self._keys)}")
            self._keys[name] = Key(name, Anything(), None, f"free key read by {self.model_class.__name__}", "model")
        key = self._keys[name]
        current = self._values.get(name)  # merged into, unless it is "no sampling" (a NoSampling is false)
        if _is_struct(key) and isinstance(value, Mapping) and isinstance(current, Mapping) and current:
            value = {**current, **value}
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
        return {k: plain_value(v) for k, v in self._values.items()}

    def save(self, path: str | Path) -> None:
        """Write the resolved config as YAML (atomically)."""
        from recforge.utils.files import atomic_write

        with atomic_write(path, "w") as handle:
            handle.write(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    def __str__(self) -> str:
        groups: dict[str, list[str]] = {}
        for name, value in self._values.items():
            group = self._keys[name].group if name in self._keys else "environment"
            groups.setdefault(group, []).append(f"  {name} = {value!r}")
        return "\n".join(f"[{g}]\n" + "\n".join(lines) for g, lines in groups.items())

    def __repr__(self) -> str:
        return f"Config(model={self['model']!r}, dataset={self['dataset']!r})"
