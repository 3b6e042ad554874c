"""The knowledge-aware data set: interactions plus a knowledge graph (``.kg``) and item links (``.link``), RecBole's
way (``KnowledgeBasedDataset``).

Processing, in RecBole 1.2.1's order:

1. ``.kg`` (head, relation, tail) and ``.link`` (item, entity) are read with the interaction files; heads, tails and
   ``alias_of_entity_id`` fields share one vocabulary, relations and ``alias_of_relation_id`` fields another, and the
   link's items and entities are matched to them by token.
2. The interaction filters run; then triples with a missing head, relation or tail are dropped, and
   ``entity_kg_num_interval`` / ``relation_kg_num_interval`` drop entities and relations whose number of triples
   lies outside the interval (counting an entity once per triple side), repeated until nothing changes.
3. Links are kept when their item is still among the interactions' or the ``.item`` file's items and their entity
   is still in a triple; an item (or entity) listed in several links keeps its first one, with a warning. Then every
   interaction whose item has no link is dropped: as in RecBole, a knowledge-aware data set holds linked items
   only (ml-100k: 1,598 of 1,682 items, 97,554 of 100,000 interactions).
4. Ids: users, items, entities (heads, then tails, by first appearance) and relations as for any token field; then
   items and entities are merged into one id space: unlinked items first and linked items last (each group in its
   own order), and entity ``i`` is item ``i`` for every item id (an unlinked item is a "virtual" entity without
   triples); the other entities follow from ``item_num`` on. With ``kg_reverse_r`` every triple is added reversed
   under a relation ``<name>_r`` (ids shifted by the number of relations); the last relation id is
   ``[UI-Relation]``, the user-item relation of the collaborative knowledge graph.
``kg_feat`` holds the triples as id arrays; ``kg_graph`` / ``ckg_graph`` give them as SciPy sparse matrices.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recforge.config.intervals import parse_intervals
from recforge.data.columns import Column, TokenColumn, take
from recforge.data.dataset import Dataset
from recforge.data.processing import filters
from recforge.data.processing.loading import _recode
from recforge.data.processing.vocabulary import unify
from recforge.errors import DataError
from recforge.utils.arrays import first_occurrences

logger = logging.getLogger("recforge")

UI_RELATION = "[UI-Relation]"
Tables = dict[str, dict[str, Column] | None]


class KnowledgeBasedDataset(Dataset):
    """A ``Dataset`` with a knowledge graph (see the module docstring for the processing).

    Attributes (RecBole's):
        head_entity_field, tail_entity_field, relation_field, entity_field: column names from the config.
        kg_feat: ``{head_entity_field, relation_field, tail_entity_field: int64 [n_triples]}``.
        link_feat: ``{iid_field, entity_field: int64 [n_links]}``, the kept links as (item id, entity id).
        entity_num, relation_num: numbers of ids, padding (and ``[UI-Relation]``) included.
        item2entity, entity2item: the kept links as token dictionaries.
    """

    files_read = ("inter", "user", "item", "kg")
    cached_tables = ("inter", "user", "item", "kg", "link")

    def _set_fields(self, config: Mapping[str, Any]) -> None:
        super()._set_fields(config)
        self.head_entity_field: str = config["HEAD_ENTITY_ID_FIELD"]
        self.tail_entity_field: str = config["TAIL_ENTITY_ID_FIELD"]
        self.relation_field: str = config["RELATION_ID_FIELD"]
        self.entity_field: str = config["ENTITY_ID_FIELD"]
        self.kg_reverse_r: bool = config["kg_reverse_r"]
        self.kg_feat: dict[str, np.ndarray] = {}
        self.link_feat: dict[str, np.ndarray] = {}

    # -- public API --------------------------------------------------------------------------------
    @property
    def entity_num(self) -> int:
        """Number of entity ids, virtual entities (unlinked items) and padding included."""
        return len(self.field2id_token[self.entity_field])

    @property
    def relation_num(self) -> int:
        """Number of relation ids, padding, reversed relations and ``[UI-Relation]`` included."""
        return len(self.field2id_token[self.relation_field])

    @property
    def head_entities(self) -> np.ndarray:
        return self.kg_feat[self.head_entity_field]

    @property
    def tail_entities(self) -> np.ndarray:
        return self.kg_feat[self.tail_entity_field]

    @property
    def relations(self) -> np.ndarray:
        return self.kg_feat[self.relation_field]

    @property
    def entities(self) -> np.ndarray:
        """Every entity id, virtual entities included."""
        return np.arange(self.entity_num)

    @property
    def item2entity(self) -> dict[str, str]:
        items, entities = self.link_feat[self.iid_field], self.link_feat[self.entity_field]
        item_tokens, entity_tokens = self.field2id_token[self.iid_field], self.field2id_token[self.entity_field]
        return dict(zip(item_tokens[items], entity_tokens[entities], strict=True))

    @property
    def entity2item(self) -> dict[str, str]:
        return {entity: item for item, entity in self.item2entity.items()}

    def kg_graph(self, form: str = "coo", value_field: str | None = None):
        """[entity_num, entity_num] SciPy matrix of the triples: 1 or ``value_field`` per triple (repeats add up)."""
        import scipy.sparse as sp

        heads, tails = self.head_entities, self.tail_entities
        values = np.ones(len(heads)) if value_field is None else self._kg_values(value_field)
        return _sparse(sp.coo_matrix((values, (heads, tails)), shape=(self.entity_num, self.entity_num)), form)

    def ckg_graph(self, form: str = "coo", value_field: str | None = None):
        """The collaborative knowledge graph ([user_num + entity_num] square, SciPy): user -> item and item -> user
        edges of the interactions (items and entities shifted by ``user_num``), then the triples; values 1, or the
        relations (``[UI-Relation]`` for user-item edges) with ``value_field = relation_field``."""
        import scipy.sparse as sp

        if value_field is not None and value_field != self.relation_field:
            raise ValueError(f"value_field of ckg_graph can only be {self.relation_field!r}, not {value_field!r}")
        n_users = self.user_num
        users, items = self.inter_feat[self.uid_field], self.inter_feat[self.iid_field] + n_users
        src = np.concatenate([users, items, self.head_entities + n_users])
        dst = np.concatenate([items, users, self.tail_entities + n_users])
        if value_field is None:
            values = np.ones(len(src))
        else:
            values = np.concatenate([np.full(2 * len(users), self.relation_num - 1), self.relations])
        size = n_users + self.entity_num
        return _sparse(sp.coo_matrix((values, (src, dst)), shape=(size, size)), form)

    def _kg_values(self, field: str) -> np.ndarray:
        if field not in self.kg_feat:
            raise KeyError(f"value_field {field!r} is not a column of kg_feat ({', '.join(self.kg_feat)})")
        return self.kg_feat[field]

    def __str__(self) -> str:
        return (
            f"{super().__str__()}; {self.entity_num - 1} entities, {self.relation_num - 1} relations, "
            f"{len(self.head_entities)} triples, {len(self.link_feat.get(self.iid_field, ()))} linked items"
        )

    __repr__ = __str__

    # -- processing --------------------------------------------------------------------------------
    def source_files(self) -> list[Path]:
        return [*super().source_files(), self._file("link")]

    def id_groups(self) -> dict[str, list[str]]:
        groups = super().id_groups()
        groups[self.head_entity_field] = [
            self.head_entity_field,
            self.tail_entity_field,
            *(self.config["alias_of_entity_id"] or []),
        ]
        groups[self.relation_field] = [self.relation_field, *(self.config["alias_of_relation_id"] or [])]
        return groups

    def _read(self) -> tuple[Tables, dict[str, list[str]]]:
        if self.config["load_col"] is not None:
            for suffix in ("kg", "link"):
                if suffix not in self.config["load_col"]:
                    raise DataError(
                        f"config key 'load_col' has no '{suffix}' entry, but {self.config['model']} needs the "
                        f".{suffix} file; add kg: [{self.head_entity_field}, {self.relation_field}, "
                        f"{self.tail_entity_field}] and link: [{self.iid_field}, {self.entity_field}] to load_col "
                        "(as RecBole's knowledge_base.yaml does), or set load_col: ~"
                    )
        for suffix, what in (
            ("kg", f"a knowledge graph: {self.head_entity_field}, {self.relation_field}, {self.tail_entity_field}"),
            ("link", f"the links of items to entities: {self.iid_field}, {self.entity_field}"),
        ):
            if not self._file(suffix).is_file():
                raise DataError(f"{self._file(suffix)}: file not found ({self.config['model']} needs {what})")
        tables, groups = super()._read()
        kg = tables["kg"]
        for field, role in (
            (self.head_entity_field, "HEAD_ENTITY_ID_FIELD"),
            (self.relation_field, "RELATION_ID_FIELD"),
            (self.tail_entity_field, "TAIL_ENTITY_ID_FIELD"),
        ):
            self._require_column(kg, field, role, "kg")
        link = self._load("link", required=True)
        self._require_token(link, self.iid_field, "ITEM_ID_FIELD")
        self._require_token(link, self.entity_field, "ENTITY_ID_FIELD")
        self._link = dict(link.columns)
        self._join_code_space(tables, groups[self.iid_field], self.iid_field)
        self._join_code_space(tables, groups[self.head_entity_field], self.entity_field)
        return tables, groups

    def _require_column(self, table: dict[str, Column], field: str, role: str, suffix: str) -> None:
        column = table.get(field)
        if not isinstance(column, TokenColumn):
            found = "missing" if column is None else f"of type {self.field2type.get(field)}"
            raise DataError(
                f"{self._file(suffix)}: column {field!r} ({role}) is {found}; it must be a token column "
                f"(header entry {field}:token, and listed in load_col.{suffix})"
            )

    def _join_code_space(self, tables: Tables, group: list[str], link_field: str) -> None:
        """Put the link column ``link_field`` in the code space of the id group ``group`` (recoding both)."""
        members = [(name, field) for field in group for name in tables if tables[name] and field in tables[name]]
        vocabulary = tables[members[0][0]][members[0][1]].vocabulary
        merged, (group_map, link_map) = unify([vocabulary, self._link[link_field].vocabulary])
        for name, field in members:
            tables[name][field] = _recode(tables[name][field], group_map, merged)
        self._link[link_field] = _recode(self._link[link_field], link_map, merged)

    def _filter(self, tables: Tables) -> None:
        kg = tables.pop("kg")
        super()._filter(tables)
        tables["kg"] = take(kg, self._kg_keep(kg))
        self._require_rows({"kg": tables["kg"]})
        self._link = take(self._link, self._link_keep(tables))
        linked = np.zeros(len(tables["inter"][self.iid_field].vocabulary), dtype=bool)
        linked[self._link[self.iid_field].codes] = True
        keep = linked[np.maximum(tables["inter"][self.iid_field].codes, 0)]
        self._log_removed("inter", int((~keep).sum()), "interactions whose item has no .link entry")
        tables["inter"] = take(tables["inter"], keep)
        if not keep.any():
            raise DataError(
                f"no interaction is left: none of their items has a link to the knowledge graph in "
                f"{self._file('link')} (its {self.iid_field} tokens must be the .inter file's and its "
                f"{self.entity_field} tokens heads or tails of {self._file('kg')})"
            )

    def _kg_keep(self, kg: dict[str, Column]) -> np.ndarray:
        """Triples with all three ids that survive the triple-count filters (a fixed point, as in RecBole)."""
        head, tail, relation = (
            kg[f].codes for f in (self.head_entity_field, self.tail_entity_field, self.relation_field)
        )
        keep = (head >= 0) & (tail >= 0) & (relation >= 0)
        self._log_removed("kg", int((~keep).sum()), "triples without a head, relation or tail")
        entity_iv = parse_intervals(self.config["entity_kg_num_interval"], "entity_kg_num_interval")
        relation_iv = parse_intervals(self.config["relation_kg_num_interval"], "relation_kg_num_interval")
        if entity_iv or relation_iv:
            before = int(keep.sum())
            keep = kg_triple_num_fixed_point(head, tail, relation, keep, entity_iv, relation_iv)
            self._log_removed(
                "kg",
                before - int(keep.sum()),
                "triples of entities / relations outside entity_kg_num_interval / relation_kg_num_interval",
            )
        return keep

    def _link_keep(self, tables: Tables) -> np.ndarray:
        """Links whose item is among the items left and whose entity is in a triple; one link per item and per
        entity (the first)."""
        item, entity = self._link[self.iid_field].codes, self._link[self.entity_field].codes
        items_left = np.zeros(len(self._link[self.iid_field].vocabulary), dtype=bool)
        for name in ("inter", "item"):
            if tables.get(name) is not None:
                codes = tables[name][self.iid_field].codes
                items_left[codes[codes >= 0]] = True
        entities_left = np.zeros(len(self._link[self.entity_field].vocabulary), dtype=bool)
        for field in (self.head_entity_field, self.tail_entity_field):
            entities_left[tables["kg"][field].codes] = True
        keep = (item >= 0) & (entity >= 0)
        keep &= items_left[np.maximum(item, 0)] & entities_left[np.maximum(entity, 0)]
        self._log_removed("link", int((~keep).sum()), "links whose item has no interaction or entity no triple")
        for codes, what in ((item, "item"), (entity, "entity")):
            rows = np.flatnonzero(keep)
            repeated = np.setdiff1d(rows, rows[first_occurrences(codes[rows])], assume_unique=True)
            if len(repeated):
                logger.warning(
                    "%s: %d links repeat an %s of an earlier link (first at line %d); the first link of each %s is "
                    "used",
                    self._file("link"),
                    len(repeated),
                    what,
                    int(repeated[0]) + 2,
                    what,
                )
                keep[repeated] = False
        return keep

    def _log_removed(self, suffix: str, count: int, what: str) -> None:
        if count:
            line = f"filtering removed {count} from .{suffix}: {what}"
            self.processing_log.append(line)
            logger.info("%s", line)

    def _remap_all(self, tables: Tables, groups: dict[str, list[str]]) -> None:
        link_items = self._link_tokens(self.iid_field)
        link_entities = self._link_tokens(self.entity_field)
        super()._remap_all(tables, groups)
        item_map, entity_map = self._merge_items_and_entities(link_items, link_entities, groups)
        for name, field in [(n, f) for f in groups[self.iid_field] for n in tables if tables[n] and f in tables[n]]:
            tables[name][field] = _map_ids(tables[name][field], item_map)
        for name, field in [
            (n, f) for f in groups[self.head_entity_field] for n in tables if tables[n] and f in tables[n]
        ]:
            tables[name][field] = _map_ids(tables[name][field], entity_map)
        self.link_feat = {
            self.iid_field: _index_in(link_items, self.field2id_token[self.iid_field]),
            self.entity_field: _index_in(link_entities, self.field2id_token[self.entity_field]),
        }
        kg = tables.pop("kg")
        heads, relations, tails = (kg[f] for f in (self.head_entity_field, self.relation_field, self.tail_entity_field))
        relation_tokens = self.field2id_token[self.relation_field]
        if self.kg_reverse_r:
            n = len(relation_tokens) - 1
            heads, tails = np.concatenate([heads, tails]), np.concatenate([tails, heads])
            relations = np.concatenate([relations, np.where(relations > 0, relations + n, 0)])
            reverse = np.array([f"{token}_r" for token in relation_tokens[1:]], dtype=object)
            relation_tokens = np.concatenate([relation_tokens, reverse])
        relation_tokens = np.append(relation_tokens, np.array([UI_RELATION], dtype=object))
        for field in groups[self.relation_field]:
            self.field2id_token[field] = relation_tokens
        self.kg_feat = {self.head_entity_field: heads, self.relation_field: relations, self.tail_entity_field: tails}

    def _link_tokens(self, field: str) -> np.ndarray:
        column = self._link[field]
        return column.vocabulary[column.codes]

    def _merge_items_and_entities(
        self, link_items: np.ndarray, link_entities: np.ndarray, groups: dict[str, list[str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """RecBole's merge of the item and entity id spaces; returns the old -> new id maps of items and
        entities and sets the vocabularies."""
        item_tokens = self.field2id_token[self.iid_field]
        entity_tokens = self.field2id_token[self.head_entity_field]
        n_items = len(item_tokens)
        linked_item_ids = _index_in(link_items, item_tokens)
        linked = np.zeros(n_items, dtype=bool)
        linked[linked_item_ids] = True
        order = np.argsort(linked, kind="stable")  # unlinked items (and [PAD]) first, linked ones last
        item_map = np.empty(n_items, dtype=np.int64)
        item_map[order] = np.arange(n_items)
        new_item_tokens = item_tokens[order]

        linked_entity_ids = _index_in(link_entities, entity_tokens)
        entity_map = np.zeros(len(entity_tokens), dtype=np.int64)
        entity_map[linked_entity_ids] = item_map[linked_item_ids]
        others = np.ones(len(entity_tokens), dtype=bool)
        others[0] = False
        others[linked_entity_ids] = False
        other_ids = np.flatnonzero(others)
        entity_map[other_ids] = n_items + np.arange(len(other_ids))
        new_entity_tokens = np.concatenate([new_item_tokens, entity_tokens[other_ids]])
        new_entity_tokens[item_map[linked_item_ids]] = link_entities
        for field in groups[self.iid_field]:
            self.field2id_token[field] = new_item_tokens
        for field in [*groups[self.head_entity_field], self.entity_field]:
            self.field2id_token[field] = new_entity_tokens
        return item_map, entity_map


def kg_triple_num_fixed_point(
    head: np.ndarray,
    tail: np.ndarray,
    relation: np.ndarray,
    keep: np.ndarray,
    entity_iv: list | None,
    relation_iv: list | None,
) -> np.ndarray:
    """Drop triples of entities (counted as head plus as tail) and relations whose number of kept triples lies
    outside their interval, until nothing changes (RecBole's ``_filter_kg_by_triple_num``)."""
    keep = keep.copy()
    n_entities = int(max(head.max(initial=0), tail.max(initial=0))) + 1
    n_relations = int(relation.max(initial=0)) + 1
    while True:
        h, t, r = head[keep], tail[keep], relation[keep]
        entity_counts = np.bincount(h, minlength=n_entities) + np.bincount(t, minlength=n_entities)
        banned_entities = filters._out_of_range(entity_counts, entity_iv, None, n_entities)
        banned_relations = filters._out_of_range(np.bincount(r, minlength=n_relations), relation_iv, None, n_relations)
        if not banned_entities.any() and not banned_relations.any():
            return keep
        keep &= ~(banned_entities[head] | banned_entities[tail] | banned_relations[relation])


def _index_in(tokens: np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    """The position of each token in ``vocabulary`` (every token must be there)."""
    found = pc.index_in(pa.array(tokens, pa.string()), value_set=pa.array(vocabulary, pa.string()))
    return found.to_numpy(zero_copy_only=False).astype(np.int64)


def _map_ids(column: Any, mapping: np.ndarray) -> Any:
    from recforge.data.columns import SeqColumn

    if isinstance(column, SeqColumn):
        return SeqColumn(column.offsets, mapping[column.values], column.vocabulary)
    return mapping[column]


def _sparse(matrix, form: str):
    if form == "coo":
        return matrix
    if form == "csr":
        return matrix.tocsr()
    raise ValueError(f"form must be 'coo' or 'csr', not {form!r} (recforge builds no DGL or PyG graphs)")
