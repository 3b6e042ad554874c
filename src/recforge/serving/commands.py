"""The command-line side of serving: ``recforge recommend`` and ``recforge evaluate --predictions``."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import pyarrow as pa

from recforge.errors import DataError
from recforge.utils.files import read_utf8


def recommend_command(args: argparse.Namespace) -> int:
    from recforge.serving.loaded import load

    if "none" in args.exclude and len(args.exclude) > 1:
        raise DataError(f"--exclude none goes alone (it excludes nothing); got --exclude {' '.join(args.exclude)}")
    exclude = () if args.exclude == ["none"] else tuple(args.exclude)
    users = args.user or _read_users(Path(args.users_file))
    loaded = load(args.checkpoint)
    table = loaded.recommend(users, k=args.k, include_seen=args.include_seen, exclude=exclude, fallback=args.fallback)
    text = format_table(table, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def format_table(table: pa.Table, form: str) -> str:
    """``table`` as aligned text, CSV (with a header) or JSON (one list of objects)."""
    rows = table.to_pylist()
    if form == "json":
        return json.dumps(rows, ensure_ascii=False, indent=1) + "\n"
    if form == "csv":
        from io import StringIO

        out = StringIO()
        writer = csv.DictWriter(out, fieldnames=table.column_names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    cells = [table.column_names] + [
        [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in cells)


def _read_users(path: Path) -> list[str]:
    """The user tokens of a users file (one a line; blank lines skipped); DataError for a missing or empty file."""
    if not path.is_file():
        raise DataError(f"users file {path} does not exist")
    text = read_utf8(path, DataError, "users file ")  # a byte-order mark dropped, a bad byte's line named
    users = [line.strip() for line in text.splitlines() if line.strip()]
    if not users:
        raise DataError(f"users file {path} lists no user (one token per line)")
    return users
