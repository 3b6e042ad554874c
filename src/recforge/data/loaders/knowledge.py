"""Training loaders of knowledge-aware models: triples with sampled negative tails, and the interaction loader
that also offers them (RecBole's ``KGDataLoader`` / ``KnowledgeBasedDataLoader``).

A triple batch holds ``head``, ``relation``, ``tail`` and ``NEG_PREFIX + tail`` columns: a tail drawn uniformly
from the entities (``[1, entity_num)``) that is not a true tail of the head, redrawn until it is not (the
interaction sampler's rejection scheme over a CSR of each head's tails). Shuffling and sampling use the loader's
own seeded generator, saved in checkpoints, so a resumed run draws the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from recforge.data.interaction import Interaction
from recforge.data.loaders.training import TrainDataLoader
from recforge.data.loaders.view import rank_slices
from recforge.data.split.history import UserHistory
from recforge.data.split.sampler import NegativeSampler
from recforge.errors import DataError
from recforge.utils.enum_type import KGDataLoaderState

KG_SEED_OFFSET = 7919  # the triple loader's generator is seeded apart from the interaction loader's


class KGDataLoader:
    """Shuffled batches of ``train_batch_size`` triples of the whole knowledge graph, each with a negative tail."""

    def __init__(self, config: Mapping[str, Any], dataset) -> None:
        self.dataset = dataset
        self.batch_size: int = config["train_batch_size"]
        self.head_field, self.tail_field = dataset.head_entity_field, dataset.tail_entity_field
        self.relation_field = dataset.relation_field
        self.neg_tail_field = config["NEG_PREFIX"] + self.tail_field
        heads, tails = dataset.head_entities, dataset.tail_entities
        self.columns = {
            self.head_field: torch.from_numpy(heads.copy()),
            self.relation_field: torch.from_numpy(dataset.relations.copy()),
            self.tail_field: torch.from_numpy(tails.copy()),
        }
        tails_of = UserHistory.from_pairs(heads, tails, dataset.entity_num, dataset.entity_num)
        full = torch.nonzero(tails_of.lengths >= dataset.entity_num - 1).flatten()
        if len(full):
            raise DataError(
                f"{len(full)} head entities (ids {full[:5].tolist()}) have every entity as a tail, so no negative "
                "tail exists for them; remove such triples from the .kg file"
            )
        self.sampler = NegativeSampler(tails_of, "uniform")
        self.generator = torch.Generator().manual_seed(config["seed"] + KG_SEED_OFFSET)
        self.rank, self.world = 0, 1

    def shard(self, rank: int, world: int) -> None:
        """Yield slice ``rank`` of ``world`` of every batch (distributed training), as ``TrainDataLoader.shard``."""
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        n = len(self.columns[self.head_field])
        dropped = int(self.world > 1 and 0 < n % self.batch_size < self.world)
        return math.ceil(n / self.batch_size) - dropped

    def __iter__(self) -> Iterator[Interaction]:
        n = len(self.columns[self.head_field])
        order = torch.randperm(n, generator=self.generator)
        columns = {name: column[order] for name, column in self.columns.items()}
        columns[self.neg_tail_field] = self.sampler.sample(columns[self.head_field], 1, self.generator).squeeze(1)
        for start, end, share in rank_slices(n, self.batch_size, self.rank, self.world):
            yield Interaction({name: column[start:end] for name, column in columns.items()}, share=share)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])


class _MergedBatches:
    """Interaction batches, each with the next triple batch's columns added (the triples cycle: a new shuffle
    whenever they run out), RecBole's RSKG mode."""

    def __init__(self, interactions: KnowledgeBasedDataLoader) -> None:
        self.interactions = interactions

    def __len__(self) -> int:
        return len(self.interactions)

    def __iter__(self) -> Iterator[Interaction]:
        triples = iter(self.interactions.kg)
        for batch in self.interactions.iter_interactions():
            try:
                kg_batch = next(triples)
            except StopIteration:
                triples = iter(self.interactions.kg)
                kg_batch = next(triples)
            batch.update(kg_batch)
            yield batch


class KnowledgeBasedDataLoader(TrainDataLoader):
    """The training loader of knowledge-aware models: interaction batches (as ``TrainDataLoader``) and the views
    ``"kg"`` (triple batches, ``KGDataLoader``), ``"rs"`` (interaction batches) and ``"rskg"`` (interaction
    batches merged with triple batches). Objectives name the view they train on; iterating the loader itself
    follows ``set_mode`` (RecBole's API; interactions until a mode is set)."""

    def __init__(self, config: Mapping[str, Any], dataset, sampler=None, pointwise: bool = False) -> None:
        super().__init__(config, dataset, sampler, pointwise=pointwise)
        self.kg = KGDataLoader(config, dataset)
        self.kg_dataloader = self.kg  # RecBole's attribute names
        self.general_dataloader = self
        self.state = KGDataLoaderState.RS
        self.views = {"rs": self, "kg": self.kg, "rskg": _MergedBatches(self)}

    def shard(self, rank: int, world: int) -> None:
        """Slice every interaction batch and every triple batch (distributed training)."""
        super().shard(rank, world)
        self.kg.shard(rank, world)

    def set_mode(self, state: KGDataLoaderState) -> None:
        """What iterating the loader yields: ``KGDataLoaderState.RS``, ``KG`` or ``RSKG``."""
        if not isinstance(state, KGDataLoaderState):
            raise ValueError(f"set_mode takes a KGDataLoaderState (RS, KG or RSKG), not {state!r}")
        self.state = state

    def knowledge_shuffle(self, epoch_seed: int) -> None:
        """RecBole's hook for distributed shuffling; every epoch is already shuffled by the loaders' generators."""

    def iter_interactions(self) -> Iterator[Interaction]:
        return super().__iter__()

    def __iter__(self) -> Iterator[Interaction]:
        if self.state == KGDataLoaderState.KG:
            return iter(self.kg)
        if self.state == KGDataLoaderState.RSKG:
            return iter(self.views["rskg"])
        return self.iter_interactions()

    def __len__(self) -> int:
        return len(self.kg) if self.state == KGDataLoaderState.KG else super().__len__()
