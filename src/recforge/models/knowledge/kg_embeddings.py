"""Pretrained knowledge-graph embeddings for KSR and GRU4RecKG: TransE (Bordes et al., NIPS 2013) trained on a data
set's ``.kg`` file and written as the atomic files those models read, ``<dataset>.ent`` (``ent_id:token
ent_emb:float_seq``) and ``<dataset>.rel`` (``rel_id:token rel_emb:float_seq``).

RecBole ships no such files and no way to make them (its issue #880: "train them yourself, e.g. with TransE"); this
is that step. TransE: ``|h + r - t|`` (L1 or L2) small for a triple and large for a corrupted one, a margin loss
``max(0, margin + d(h, r, t) - d(h', r, t'))`` where ``h'`` or ``t'`` (each with probability 1/2) is an entity drawn
uniformly; entity vectors are renormalised to unit length before each batch, relation vectors once at the start
(the paper's algorithm 1), Adam instead of SGD. Seeded: the same files for a seed.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from recforge.data.files.atomic import read_atomic
from recforge.errors import ConfigError, DataError

logger = logging.getLogger("recforge")

ENTITY_FILE = ("ent", "ent_id", "ent_emb")  # suffix, id field, vector field (the names KSR / GRU4RecKG read)
RELATION_FILE = ("rel", "rel_id", "rel_emb")


@dataclass
class TransE:
    """TransE vectors: ``entities`` [n_entities, d] and ``relations`` [n_relations, d] (float32, row i for code i)."""

    entities: np.ndarray
    relations: np.ndarray


def train_transe(
    heads: np.ndarray,
    relations: np.ndarray,
    tails: np.ndarray,
    n_entities: int,
    n_relations: int,
    size: int = 64,
    epochs: int = 50,
    batch_size: int = 4096,
    learning_rate: float = 0.01,
    margin: float = 1.0,
    norm: int = 1,
    seed: int = 2020,
) -> tuple[TransE, list[float]]:
    """Train TransE on triples of codes (int arrays [n_triples], entities in ``[0, n_entities)``); returns the
    vectors and the mean loss of each epoch."""
    generator = torch.Generator().manual_seed(seed)
    bound = 6 / math.sqrt(size)
    entity = torch.nn.Parameter((torch.rand(n_entities, size, generator=generator) * 2 - 1) * bound)
    relation = torch.nn.Parameter(
        F.normalize((torch.rand(n_relations, size, generator=generator) * 2 - 1) * bound, dim=1)
    )
    optimizer = torch.optim.SparseAdam([entity, relation], lr=learning_rate)
    triples = torch.from_numpy(np.stack([heads, relations, tails], axis=1).astype(np.int64))
    losses = []
    for _ in range(epochs):
        total = 0.0
        for batch in triples[torch.randperm(len(triples), generator=generator)].split(batch_size):
            h, r, t = batch.unbind(1)
            corrupt = torch.randint(0, n_entities, (len(batch),), generator=generator)
            head_side = torch.rand(len(batch), generator=generator) < 0.5
            h_neg, t_neg = torch.where(head_side, corrupt, h), torch.where(head_side, t, corrupt)
            with torch.no_grad():  # the batch's entities renormalised (all of them, in the paper: the same)
                used = torch.cat([h, t, corrupt]).unique()
                entity[used] = F.normalize(entity[used], dim=1)
            vectors = F.embedding(torch.stack([h, t, h_neg, t_neg]), entity, sparse=True)
            shift = F.embedding(r, relation, sparse=True)
            positive = (vectors[0] + shift - vectors[1]).norm(p=norm, dim=1)
            negative = (vectors[2] + shift - vectors[3]).norm(p=norm, dim=1)
            loss = F.relu(margin + positive - negative).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / max(len(triples), 1))
    with torch.no_grad():
        return TransE(F.normalize(entity, dim=1).numpy().copy(), relation.numpy().copy()), losses


def write_kg_embeddings(
    dataset_dir: str | Path,
    name: str,
    out: str | Path | None = None,
    size: int = 64,
    epochs: int = 20,
    seed: int = 2020,
    overwrite: bool = False,
) -> Path:
    """Train TransE on ``<dataset_dir>/<name>.kg`` and write ``<name>.ent`` and ``<name>.rel`` into
    ``<out>/<name>`` (default: ``dataset_dir`` itself); returns that folder. When it is another folder, the data
    set's other files are linked into it, so that ``data_path: <out>`` reads the data set with its embeddings.
    Existing files are refused unless ``overwrite``; nothing half-written is left behind."""
    source = Path(dataset_dir)
    kg_path = source / f"{name}.kg"
    if not kg_path.is_file():
        raise DataError(f"{kg_path}: file not found (TransE embeddings are trained on the data set's .kg file)")
    target = source if out is None else Path(out) / name
    files = {suffix: target / f"{name}.{suffix}" for suffix in (ENTITY_FILE[0], RELATION_FILE[0])}
    existing = [str(path) for path in files.values() if path.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{', '.join(existing)} exist(s); pass --overwrite to replace them")
    table = read_atomic(kg_path)
    columns = [column for column in table.columns.values() if getattr(column, "vocabulary", None) is not None]
    if len(columns) != 3 or len(table.columns) != 3:
        raise DataError(f"{kg_path}: a .kg file has three token columns (head, relation, tail), not {table.types}")
    head, relation, tail = columns
    complete = (head.codes >= 0) & (relation.codes >= 0) & (tail.codes >= 0)  # rows with an empty field: skipped
    head, relation, tail = (type(c)(c.codes[complete], c.vocabulary) for c in (head, relation, tail))
    entity_tokens = np.union1d(head.vocabulary[head.codes], tail.vocabulary[tail.codes])
    heads, tails = (np.searchsorted(entity_tokens, c.vocabulary[c.codes]) for c in (head, tail))
    logger.info(
        "TransE on %s: %d triples, %d entities, %d relations",
        kg_path,
        len(heads),
        len(entity_tokens),
        len(relation.vocabulary),
    )
    vectors, losses = train_transe(
        heads, relation.codes, tails, len(entity_tokens), len(relation.vocabulary), size, epochs, seed=seed
    )
    logger.info("TransE loss: first epoch %.4f, last %.4f", losses[0], losses[-1])
    target.mkdir(parents=True, exist_ok=True)
    _write_vectors(files["ent"], ENTITY_FILE[1:], entity_tokens, vectors.entities)
    _write_vectors(files["rel"], RELATION_FILE[1:], relation.vocabulary, vectors.relations)
    if target.resolve() != source.resolve():
        _link_data_set(source, target, name)
    return target


def _write_vectors(path: Path, fields: tuple[str, str], tokens: np.ndarray, vectors: np.ndarray) -> None:
    """One line per token: ``token<TAB>v1 v2 ...`` under the header ``<id>:token<TAB><vector>:float_seq``, written
    to a temporary file first and renamed into place."""
    lines = [f"{fields[0]}:token\t{fields[1]}:float_seq\n"]
    lines += [f"{token}\t{' '.join(f'{v:.6g}' for v in row)}\n" for token, row in zip(tokens, vectors, strict=True)]
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w") as file:
            file.writelines(lines)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _link_data_set(source: Path, target: Path, name: str) -> None:
    """Symbolic links in ``target`` to the data set's atomic files in ``source`` (those not already there)."""
    for path in sorted(source.glob(f"{name}.*")):
        link = target / path.name
        if path.suffix not in (".ent", ".rel") and not link.exists():
            link.symlink_to(path.resolve())
