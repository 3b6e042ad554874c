"""Row filters of RecBole's data processing, vectorised. Each works on dictionary-encoded tables (token columns
are ``TokenColumn``s whose codes share one code space per id field) and returns boolean masks of rows to keep.

RecBole's order, which ``Dataset`` follows: rows without ids -> ``rm_dup_inter`` -> ``val_interval`` ->
``filter_inter_by_user_or_item`` -> ``user_inter_num_interval`` / ``item_inter_num_interval`` (fixed point).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from recforge.config.intervals import Interval, parse_intervals, within
from recforge.data.columns import Column, SeqColumn, TokenColumn
from recforge.errors import ConfigError
from recforge.utils.arrays import first_occurrences, stable_argsort

logger = logging.getLogger("recforge")

Table = dict[str, Column]


def ids_present(table: Table, field: str) -> np.ndarray:
    """Rows whose id token in ``field`` is not empty."""
    return table[field].codes >= 0


def first_or_last(inter: Table, keep: np.ndarray, uid: str, iid: str, time_field: str | None, which: str) -> np.ndarray:
    """Mask of the first (or last) occurrence of each (user, item) pair among kept rows, in time order when the
    time column is loaded (stable: ties keep file order), else in file order."""
    rows = np.flatnonzero(keep)
    time = inter.get(time_field) if time_field else None
    if isinstance(time, np.ndarray):
        rows = rows[stable_argsort(time[rows])]
    pair = inter[uid].codes[rows] * (int(inter[iid].codes.max(initial=0)) + 1) + inter[iid].codes[rows]
    if which == "last":
        pair, rows = pair[::-1], rows[::-1]
    first = first_occurrences(pair)
    out = np.zeros(len(keep), dtype=bool)
    out[rows[first]] = True
    return out


def value_mask(column: Column, allowed: Any, field: str) -> np.ndarray:
    """``val_interval`` for one column: interval strings for float columns (a float_seq row needs every value
    inside), a list of tokens for token columns."""
    if isinstance(column, np.ndarray) or (isinstance(column, SeqColumn) and column.vocabulary is None):
        intervals = parse_intervals(allowed, f"val_interval.{field}") if isinstance(allowed, str) else None
        if intervals is None:
            raise ConfigError(
                f"config key 'val_interval.{field}': a float column takes an interval such as '[3,inf)', "
                f"not {allowed!r}"
            )
        if isinstance(column, np.ndarray):
            return within(column, intervals)
        inside = within(column.values, intervals)
        outside_per_row = np.bincount(
            np.repeat(np.arange(len(column)), column.lengths), weights=~inside, minlength=len(column)
        )
        return outside_per_row == 0
    if not isinstance(allowed, (list, tuple)):
        raise ConfigError(
            f"config key 'val_interval.{field}': a token column takes a list of the tokens to keep, e.g. [F, M], "
            f"not {allowed!r}"
        )
    tokens = allowed
    vocabulary = column.vocabulary
    wanted = np.isin(vocabulary, np.asarray([str(t) for t in tokens], dtype=object))
    if isinstance(column, TokenColumn):
        return np.where(column.codes >= 0, wanted[np.maximum(column.codes, 0)], False)
    hits = wanted[column.values]
    return np.bincount(np.repeat(np.arange(len(column)), column.lengths), weights=hits, minlength=len(column)) > 0


def known_ids(table: Table | None, field: str, keep: np.ndarray | None, size: int) -> np.ndarray | None:
    """Boolean lookup over codes: which ids have a kept row in ``table`` (None when the table is absent)."""
    if table is None:
        return None
    codes = table[field].codes[keep if keep is not None else slice(None)]
    known = np.zeros(size, dtype=bool)
    known[codes[codes >= 0]] = True
    return known


def inter_num_fixed_point(
    uid: np.ndarray,
    iid: np.ndarray,
    keep: np.ndarray,
    user_iv: list[Interval] | None,
    item_iv: list[Interval] | None,
    user_ids: np.ndarray | None,
    item_ids: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Drop users and items whose interaction count lies outside their interval, until nothing changes.

    ``user_ids`` / ``item_ids`` are the id codes of the .user / .item rows (or None): an id listed there with
    no interaction at all is banned when 0 is outside the interval. Returns the interaction mask and the masks
    of the feature-table rows that remain.
    """
    keep = keep.copy()
    n_users = int(max(uid.max(initial=-1), user_ids.max(initial=-1) if user_ids is not None else -1)) + 1
    n_items = int(max(iid.max(initial=-1), item_ids.max(initial=-1) if item_ids is not None else -1)) + 1
    banned_users = np.zeros(n_users, dtype=bool)
    banned_items = np.zeros(n_items, dtype=bool)
    while True:
        u, i = uid[keep], iid[keep]
        new_users = _out_of_range(np.bincount(u, minlength=n_users), user_iv, user_ids, n_users) & ~banned_users
        new_items = _out_of_range(np.bincount(i, minlength=n_items), item_iv, item_ids, n_items) & ~banned_items
        if not new_users.any() and not new_items.any():
            break
        banned_users |= new_users
        banned_items |= new_items
        keep &= ~(banned_users[np.maximum(uid, 0)] | banned_items[np.maximum(iid, 0)])
    user_keep = ~banned_users[user_ids] if user_ids is not None else None
    item_keep = ~banned_items[item_ids] if item_ids is not None else None
    return keep, user_keep, item_keep


def _out_of_range(
    counts: np.ndarray, intervals: list[Interval] | None, listed: np.ndarray | None, n: int
) -> np.ndarray:
    if not intervals:
        return np.zeros(n, dtype=bool)
    present = counts > 0
    if listed is not None:
        present[listed[listed >= 0]] = True
    return present & ~within(counts.astype(np.float64), intervals)


def check_value_filters(val_interval: Mapping[str, Any] | None, types: Mapping[str, str]) -> None:
    """Reject ``val_interval`` fields that are not loaded anywhere, naming what is."""
    for field in val_interval or {}:
        if field not in types:
            raise ConfigError(
                f"config key 'val_interval' names {field!r}, which is not a loaded column; loaded: {', '.join(types)}"
            )


# -- the filters in RecBole's order --------------------------------------------------------------


def filter_tables(dataset, tables: dict[str, Table | None]) -> dict[str, np.ndarray]:
    """Masks of the rows of each table that survive every filter; logs what each filter removed."""
    config = dataset.config
    inter, users, items = tables["inter"], tables["user"], tables["item"]
    keep = {name: np.ones(len(next(iter(t.values()))), dtype=bool) for name, t in tables.items() if t}

    keep["inter"] &= ids_present(inter, dataset.uid_field) & ids_present(inter, dataset.iid_field)
    for name, field in (("user", dataset.uid_field), ("item", dataset.iid_field)):
        if tables[name] is not None:
            keep[name] &= ids_present(tables[name], field)
    _report(dataset, "rows without a user or item id", keep)

    if config["rm_dup_inter"] is not None:
        keep["inter"] &= first_or_last(
            inter, keep["inter"], dataset.uid_field, dataset.iid_field, dataset.time_field, config["rm_dup_inter"]
        )
        _report(dataset, f"repeated interactions (rm_dup_inter: {config['rm_dup_inter']})", keep)

    val_interval = config["val_interval"] or {}
    check_value_filters(val_interval, dataset.field2type)
    for field, allowed in val_interval.items():
        for name, table in tables.items():
            if table is not None and field in table:
                keep[name] &= value_mask(table[field], allowed, field)
    if val_interval:
        _report(dataset, f"rows outside val_interval {val_interval}", keep)

    if config["filter_inter_by_user_or_item"]:
        for name, field in (("user", dataset.uid_field), ("item", dataset.iid_field)):
            size = len(inter[field].vocabulary)
            known = known_ids(tables[name], field, keep.get(name), size)
            if known is not None:
                keep["inter"] &= known[np.maximum(inter[field].codes, 0)]
        _report(dataset, "interactions whose user or item is missing from the .user / .item file", keep)

    user_iv = _excluding(parse_intervals(config["user_inter_num_interval"], "user_inter_num_interval"))
    item_iv = _excluding(parse_intervals(config["item_inter_num_interval"], "item_inter_num_interval"))
    if user_iv or item_iv:
        user_ids = users[dataset.uid_field].codes if users is not None else None
        item_ids = items[dataset.iid_field].codes if items is not None else None
        kept, user_keep, item_keep = inter_num_fixed_point(
            inter[dataset.uid_field].codes,
            inter[dataset.iid_field].codes,
            keep["inter"],
            user_iv,
            item_iv,
            np.where(keep["user"], user_ids, -1) if users is not None else None,
            np.where(keep["item"], item_ids, -1) if items is not None else None,
        )
        keep["inter"] = kept
        if user_keep is not None:
            keep["user"] &= user_keep
        if item_keep is not None:
            keep["item"] &= item_keep
        _report(dataset, "rows of users / items outside user_inter_num_interval / item_inter_num_interval", keep)
    return keep


def _excluding(intervals: list[Interval] | None) -> list[Interval] | None:
    """``intervals``, or None when they admit every count (one of them holds [0, inf), RecBole's default), so
    that the count filter, which could remove nothing, is skipped."""
    if intervals and any(iv.low < 0 or (iv.low == 0 and iv.low_closed) for iv in intervals if iv.high == np.inf):
        return None
    return intervals


def _report(dataset, what: str, keep: dict[str, np.ndarray]) -> None:
    """Log how many rows the latest filter removed from each file (kept in ``processing_log``)."""
    counts = {name: int((~mask).sum()) for name, mask in keep.items()}
    removed = {name: counts[name] - dataset._removed_so_far.get(name, 0) for name in counts}
    dataset._removed_so_far = counts
    shown = ", ".join(f"{n} from .{name}" for name, n in removed.items() if n)
    if shown:
        line = f"filtering removed {shown}: {what}"
        dataset.processing_log.append(line)
        logger.info("%s", line)
