"""Scoring rankings produced elsewhere with recforge's own evaluation (``recforge evaluate --predictions``).

A predictions file is delimited text (``,`` for ``.csv``, tab otherwise, or whichever the header uses) whose
header names a user column (the data set's ``USER_ID_FIELD``, ``user_id`` or ``user``), an item column
(``ITEM_ID_FIELD``, ``item_id`` or ``item``) and a ``rank`` (1 = best) or ``score`` (higher = better) column;
other columns are ignored. The file is UTF-8 (a byte-order mark is dropped; a byte that is not UTF-8 is an error
naming its line) and a field may be of any length. The data set is split as the config says, and the file's
rankings go through the same masking (a user's items of earlier splits are removed, so the next listed item moves
up) and the same metrics as a model's full ranking: the listed items are the candidates, a user's unlisted items
are never recommended, and a test user the file does not list has an empty list.
"""

from __future__ import annotations

import csv
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import torch

from recforge.data import create_dataset, data_preparation
from recforge.data.split.history import UserHistory, csr_positions
from recforge.errors import ConfigError, DataError, shown
from recforge.evaluation.evaluator import Evaluator
from recforge.trainer.scoring import score_loader

logger = logging.getLogger("recforge")


class ExternalRanking(torch.nn.Module):
    """Scores [B, n_items] from a file's rankings: the listed items' scores (``-rank`` for ranks), -inf for
    every other item. Stands in for a model in ``score_loader``."""

    def __init__(self, ranking: UserHistory, scores: torch.Tensor, uid_field: str, iid_field: str) -> None:
        super().__init__()
        self.ranking, self.values = ranking, scores
        self.n_items = ranking.n_items
        self.USER_ID, self.ITEM_ID = uid_field, iid_field

    def full_sort_predict(self, interaction) -> torch.Tensor:
        users = interaction[self.USER_ID].cpu()
        rows, flat = csr_positions(self.ranking.indptr, users)
        scores = torch.full((len(users), self.n_items), -torch.inf, dtype=self.values.dtype)
        scores[rows, self.ranking.items[flat]] = self.values[flat]
        return scores


def read_predictions(path: Path, dataset) -> tuple[UserHistory, torch.Tensor]:
    """The file's rankings as ``(ranking, scores)``: ``ranking`` holds each user's listed items (ascending, as a
    ``UserHistory``) and ``scores[j]`` the score of its j-th pair (higher = better). Errors name the line.

    The file is read and checked column by column (pyarrow); only a file those checks do not pass is read again
    line by line, to name the first bad line (or accept what Python's ``float`` reads and pyarrow does not)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"predictions file {path} does not exist")
    with open(path, "rb") as handle:
        first = next(_utf8_lines(handle, path), "")
    delimiter = "," if path.suffix.lower() == ".csv" or ("," in first and "\t" not in first) else "\t"
    with _no_field_limit():
        header = [name.strip() for name in next(_rows(csv.reader([first], delimiter=delimiter), path, 0), [])]
    columns = _columns(path, header, dataset)
    parsed = _read_columns(path, header, delimiter, columns, dataset)
    users, items, values = parsed if parsed is not None else _read_lines(path, header, delimiter, columns, dataset)
    if not len(users):
        raise DataError(f"{path}: no predictions (only a header)")
    keys = users * dataset.item_num + items
    order = np.argsort(keys, kind="stable")
    ranking = UserHistory._from_keys(keys[order], dataset.user_num, dataset.item_num)
    return ranking, torch.as_tensor(values[order], dtype=torch.float64)


def _read_columns(path: Path, header: list[str], delimiter: str, columns, dataset):
    """``(users, items, scores)`` arrays of a well-formed file, or None when any check fails."""
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter),
            convert_options=pa_csv.ConvertOptions(column_types={name: pa.string() for name in header}),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    text = [pc.utf8_trim_whitespace(table.column(i)) for i in columns[:3]]
    ids = []
    for tokens, field in zip(text[:2], (dataset.uid_field, dataset.iid_field), strict=True):
        found = pc.index_in(tokens, value_set=pa.array(dataset.field2id_token[field][1:].tolist(), pa.string()))
        if found.null_count:
            return None
        ids.append(found.to_numpy(zero_copy_only=False).astype(np.int64) + 1)
    try:
        values = pc.cast(text[2], pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return None
    if not np.isfinite(values).all() or (columns[3] == "rank" and (values < 1).any()):
        return None
    keys = np.sort(ids[0] * dataset.item_num + ids[1])
    if (keys[1:] == keys[:-1]).any():
        return None
    return ids[0], ids[1], -values if columns[3] == "rank" else values


def _read_lines(path: Path, header: list[str], delimiter: str, columns, dataset):
    """``(users, items, scores)`` read line by line; the first bad line is a DataError naming it."""
    users, items, values = [], [], []
    seen: dict[tuple[int, int], int] = {}
    user_ids, item_ids = _vocabulary(dataset, dataset.uid_field), _vocabulary(dataset, dataset.iid_field)
    with open(path, "rb") as handle, _no_field_limit():
        rows = csv.reader(_utf8_lines(handle, path), delimiter=delimiter)
        for row in _rows(rows, path, skip=1):
            line_no = rows.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                fields = ", ".join(shown(field) for field in row)
                raise DataError(f"{path}, line {line_no}: expected {len(header)} fields, found {len(row)}: [{fields}]")
            user, item, value = (row[i].strip() for i in columns[:3])
            user_id = _lookup(user_ids, user, "user", path, line_no, dataset)
            item_id = _lookup(item_ids, item, "item", path, line_no, dataset)
            try:
                number = float(value)
            except ValueError:
                number = float("nan")
            if not np.isfinite(number) or (columns[3] == "rank" and number < 1):
                kind = "a rank (1 = best)" if columns[3] == "rank" else "a finite score"
                raise DataError(f"{path}, line {line_no}: {columns[3]} {shown(value)} is not {kind}")
            if (user_id, item_id) in seen:
                raise DataError(
                    f"{path}, line {line_no}: user {shown(user)} lists item {shown(item)} twice (first on line "
                    f"{seen[(user_id, item_id)]})"
                )
            seen[(user_id, item_id)] = line_no
            users.append(user_id)
            items.append(item_id)
            values.append(-number if columns[3] == "rank" else number)
    return np.asarray(users, np.int64), np.asarray(items, np.int64), np.asarray(values, np.float64)


def _utf8_lines(handle: BinaryIO, path: Path) -> Iterator[str]:
    """The lines of a file opened in binary mode, decoded (a leading byte-order mark dropped); a byte that is not
    UTF-8 is a DataError naming the line."""
    for line_no, raw in enumerate(handle, start=1):
        try:
            yield raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path}, line {line_no}: not UTF-8 text (byte {raw[exc.start]:#04x} at byte {exc.start + 1} of the "
                "line); save the file as UTF-8"
            ) from None


def _rows(reader, path: Path, skip: int) -> Iterator[list[str]]:
    """The rows of a ``csv.reader`` after the first ``skip``; the csv module's errors name the line."""
    try:
        for number, row in enumerate(reader):
            if number >= skip:
                yield row
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: {exc}") from None


@contextmanager
def _no_field_limit() -> Iterator[None]:
    """Lift the csv module's limit on a field's length (131072 characters) while reading: a token may be longer."""
    previous = csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def evaluate_predictions(path: str | Path, config: Mapping[str, Any], split: str = "test") -> dict[str, float]:
    """The metrics of the file's rankings on ``split`` ("test" or "valid") of the config's data set."""
    if config["eval_args"]["mode"][split] != "full":
        raise ConfigError(
            f"eval_args.mode for {split} is {config['eval_args']['mode'][split]!r}; an external ranking is scored "
            "as a full ranking: set eval_args.mode to full"
        )
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    loader = test_data if split == "test" else valid_data
    if loader is None:
        raise ConfigError(f"the split has no {split} part (eval_args.split); nothing to score")
    ranking, scores = read_predictions(Path(path), train_data.dataset)
    missing = int((ranking.lengths[loader.users] == 0).sum())
    if missing:
        logger.warning(
            "%d of %d %s users have no predictions (scored as empty lists)", missing, len(loader.users), split
        )
    model = ExternalRanking(ranking, scores, dataset.uid_field, dataset.iid_field)
    evaluator = Evaluator.from_config(config)
    return score_loader(model, loader, evaluator, torch.device("cpu"), config["LABEL_FIELD"])


def _columns(path: Path, header: list[str], dataset) -> tuple[int, int, int, str]:
    """Positions of the user, item and rank / score columns, and which of rank / score it is."""

    def find(*names: str) -> int | None:
        return next((header.index(n) for n in names if n in header), None)

    user = find(dataset.uid_field, "user_id", "user")
    item = find(dataset.iid_field, "item_id", "item")
    rank, score = find("rank"), find("score")
    if user is None or item is None or (rank is None) == (score is None):
        raise DataError(
            f"{path}, line 1: the header must name a user column ({dataset.uid_field} or user), an item column "
            f"({dataset.iid_field} or item) and one of rank (1 = best) or score (higher = better); it has: "
            f"{', '.join(header) or 'nothing'}"
        )
    return user, item, rank if rank is not None else score, "rank" if rank is not None else "score"


def _vocabulary(dataset, field: str) -> dict[str, int]:
    return {token: i for i, token in enumerate(dataset.field2id_token[field].tolist()) if i}


def _lookup(ids: dict[str, int], token: str, kind: str, path: Path, line_no: int, dataset) -> int:
    found = ids.get(token)
    if found is None:
        raise DataError(
            f"{path}, line {line_no}: {kind} {shown(token)} is not a {kind} of {dataset.dataset_name} after processing "
            f"(its {len(ids)} {kind}s); rank only the data set's own {kind}s"
        )
    return found
