"""The trainers of knowledge-aware models (RecBole's KGTrainer, KGATTrainer, MKRTrainer) as configurations of the
objectives machinery: which loss trains on which view of the ``KnowledgeBasedDataLoader`` in which epoch. No copy
of ``fit``; resume, precision, callbacks and progress are ``Trainer``'s."""

from __future__ import annotations

from recforge.registry import register_trainer
from recforge.trainer.objectives import EpochHook, Objective, kgat_plan, knowledge_objectives, mkr_objectives
from recforge.trainer.trainer import Trainer


@register_trainer
class KGTrainer(Trainer):
    """``train_rec_step`` epochs of the recommendation loss, then ``train_kg_step`` epochs of ``calculate_kg_loss``
    on triple batches, in cycles; when either is unset (RecBole's default), ``calculate_loss`` every epoch on
    interaction batches merged with triple batches (RSKG), or on interaction batches alone when the model's loss
    reads no triples (its ``uses_kg_batches`` is False)."""

    def build_objectives(self) -> list[Objective]:
        config = self.config
        rec_step, kg_step = config.get("train_rec_step"), config.get("train_kg_step")
        return knowledge_objectives(rec_step, kg_step, merged=getattr(self.model, "uses_kg_batches", True))


@register_trainer
class KGATTrainer(Trainer):
    """Every epoch: the recommendation loss on interaction batches, then ``calculate_kg_loss`` on triple batches,
    then ``update_attentive_A`` without gradients (the attention over the knowledge graph is refreshed)."""

    def build_objectives(self) -> list[Objective]:
        return kgat_plan()[0]

    def build_hooks(self) -> list[EpochHook]:
        return [*super().build_hooks(), *kgat_plan()[1]]


@register_trainer
class MKRTrainer(Trainer):
    """Every epoch ``calculate_rs_loss`` on interaction batches; every ``kge_interval`` epochs (from epoch 0) also
    ``calculate_kg_loss`` on triple batches."""

    def build_objectives(self) -> list[Objective]:
        return mkr_objectives(self.config["kge_interval"])
