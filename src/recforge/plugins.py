"""Models and trainers of a user's own: ``recforge run --import MODULE`` (a dotted name or a .py file).

A module is imported and every ``Recommender`` / ``AbstractTrainer`` subclass defined in it is registered, also
those without ``@register_model`` (written for RecBole). Anything that goes wrong while importing it is one line
naming the user's file and line.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recforge.errors import ConfigError


def import_modules(names: Sequence[str]) -> None:
    """Import the modules (dotted names, or paths to .py files) that register a user's models and trainers. A
    module that cannot be imported, has a syntax error or raises is a ConfigError naming its file and line (the
    original exception is its cause, shown with ``--debug``)."""
    import importlib
    import importlib.util
    from pathlib import Path

    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # a console script does not search the working directory
    for name in names:
        if name.endswith(".py") and not Path(name).is_file():
            raise ConfigError(f"--import {name}: no such file")
        try:
            if name.endswith(".py"):
                path = Path(name)
                spec = importlib.util.spec_from_file_location(path.stem, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[path.stem] = module
                spec.loader.exec_module(module)
            else:
                module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise ConfigError(f"--import {name}: {_where(exc)}{exc}") from exc
            raise ConfigError(f"--import {name}: cannot import it ({exc})") from None
        except SyntaxError as exc:
            where = f"{exc.filename}:{exc.lineno}: " if exc.filename else ""
            raise ConfigError(f"--import {name}: {where}syntax error: {exc.msg}") from exc
        except ConfigError as exc:
            raise ConfigError(f"--import {name}: {_where(exc)}{exc}") from exc
        except Exception as exc:
            raise ConfigError(f"--import {name}: {_where(exc)}{type(exc).__name__}: {exc}") from exc
        register_module_classes(module)


def _where(exc: BaseException) -> str:
    """``"file:line: "`` of the innermost frame of ``exc``'s traceback outside recforge and the import machinery
    (the user's own code), or ""."""
    import traceback
    from pathlib import Path

    package = str(Path(__file__).resolve().parent)  # recforge/
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(package) and not f.filename.startswith("<frozen")
    ]
    return f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""


def register_module_classes(module) -> None:
    """Register the models and trainers a module defines, also those without ``@register_model`` (a model written
    for RecBole): every ``Recommender`` / ``AbstractTrainer`` subclass whose home is that module. A class named
    like a built-in one replaces it for this run, with a warning."""
    import logging

    from recforge.models.base import Recommender
    from recforge.registry import MODELS, TRAINERS
    from recforge.trainer import AbstractTrainer

    for value in vars(module).values():
        if not isinstance(value, type) or value.__module__ != module.__name__:
            continue
        if issubclass(value, Recommender):
            registry = MODELS
        elif issubclass(value, AbstractTrainer):
            registry = TRAINERS
        else:
            continue
        own = f"{value.__module__}.{value.__qualname__}"
        previous = registry.replace(value.__name__, value)
        if previous is not None and previous != own:
            logging.getLogger("recforge").warning(
                "%s.%s replaces the %s %s of %s for this run (the same name)",
                module.__name__,
                value.__name__,
                registry.kind,
                value.__name__,
                previous.rpartition(".")[0],
            )
