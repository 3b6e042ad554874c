"""A study's Optuna storage: opening it, and one line for each way it can fail.

sqlalchemy's errors span several lines (the SQL statement, a link); ``storage_error`` gives one line that names
the database (the file, for SQLite) and what to do: a file that is not a SQLite database (damaged, or another
file), a database locked by another process (sqlite waits 5 s first), or any other error with its first line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from recforge.tuning.params import clip
from recforge.tuning.trial import TuningError


def masked_url(url: str) -> str:
    """The storage URL without its password (it is printed and written to results.json)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL sqlalchemy knows: shown as given
        return url


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL; None for any other URL (or an in-memory database)."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:
        return None
    database = parsed.database
    return database if parsed.get_backend_name() == "sqlite" and database not in (None, "", ":memory:") else None


def storage_error(url: str, exc: BaseException, doing: str) -> TuningError:
    """One line for a failure of the storage at ``url`` while ``doing`` ("cannot open it", ...)."""
    cause: BaseException = exc.__cause__ if type(exc).__name__ == "StorageInternalError" and exc.__cause__ else exc
    cause = getattr(cause, "orig", None) or cause  # sqlalchemy's DBAPIError wraps the driver's error
    text = clip(" ".join(str(cause).split()), 300) or type(cause).__name__
    reason = f"{type(cause).__name__}: {text}"
    file = sqlite_file(url)
    if file is not None and ("not a database" in text or "malformed" in text):
        return TuningError(
            f"storage {file}: not a readable SQLite database, damaged or another kind of file ({reason}); move it "
            "away to start the study afresh (its trials are lost), or give another --study-dir or --storage"
        )
    if "database is locked" in text or "database table is locked" in text:
        return TuningError(
            f"storage {file or masked_url(url)}: the database is locked by another process (another recforge tune "
            "on this study?); run the same command again when that process has finished"
        )
    return TuningError(f"storage {masked_url(url)}: {doing} ({reason})")


@contextmanager
def storage_errors(url: str, doing: str) -> Iterator[None]:
    """Turn the errors of the storage's database (sqlalchemy's, Optuna's StorageInternalError) into one
    ``storage_error``."""
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (SQLAlchemyError, StorageInternalError) as exc:
        raise storage_error(url, exc, doing) from exc


def connect(optuna: Any, url: str, name: str, direction: str) -> Any:
    """Create the study ``name`` in the storage at ``url``, or load it."""
    try:
        return optuna.create_study(storage=url, study_name=name, direction=direction, load_if_exists=True)
    except Exception as exc:  # a bad URL, a missing driver, a damaged file, an unreachable server, an old schema
        raise storage_error(url, exc, "cannot open it") from exc
