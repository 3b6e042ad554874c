"""The config reference as Markdown, generated from the key declarations (docs/config.md is its output)."""

from __future__ import annotations

from recforge.config.compat import NO_EFFECT
from recforge.config.keys import PACKAGE_KEYS


def _default(value: object) -> str:
    text = "~" if value is None else repr(value).replace("'", "")
    return f"`{text}`".replace("|", "\\|")


def markdown_reference() -> str:
    """Every package key by group, every model's own keys, and the RecBole keys accepted but ignored."""
    from recforge.registry import get_model_class, model_names

    lines = [
        "# Config keys",
        "",
        "Generated from the key declarations by `python -m recforge.config.reference` (a test keeps it current).",
        "Layers, lowest first: package defaults < model defaults < data-set defaults < a resumed run's config < "
        "YAML files (`config_file_list`) < `config_dict` < command line (`--key value`; a script's own "
        "`--key=value` arguments when `cmd_args` is None, as in RecBole). Unknown keys are one error naming them "
        "all; RecBole keys without effect are accepted (see the last table).",
        "",
    ]
    groups: dict[str, list] = {}
    for key in PACKAGE_KEYS:
        groups.setdefault(key.group, []).append(key)
    for group, keys in groups.items():
        lines += [f"## {group.capitalize()}", "", "| key | default | type | meaning |", "|---|---|---|---|"]
        lines += [f"| `{k.name}` | {_default(k.default)} | {k.type.describe()} | {k.doc} |" for k in keys]
        lines.append("")
    lines += ["## Model keys", "", "| model | key | default | type | meaning |", "|---|---|---|---|---|"]
    for name in model_names():
        for k in get_model_class(name).hyper_parameters or ():
            lines.append(f"| {name} | `{k.name}` | {_default(k.default)} | {k.type.describe()} | {k.doc} |")
    lines += [
        "",
        "## RecBole keys accepted without effect",
        "",
        "A RecBole file loads unchanged. These settings are accepted; a value other than RecBole's default (or `~`)",
        "is reported, with the reason, in one warning per run. Hyper-parameters of RecBole models that recforge does",
        "not implement are accepted and reported the same way.",
        "",
        "| key | why |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {why} |" for name, why in NO_EFFECT.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(markdown_reference(), end="")
