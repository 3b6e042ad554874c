"""The trainers of knowledge-aware models (RecBole's KGTrainer, KGATTrainer, MKRTrainer): which loss trains on which
view of the ``KnowledgeBasedDataLoader`` in which epoch, declared as objectives (and, for KGAT, a callback). No copy
of ``fit``; resume, precision, callbacks and progress are ``Trainer``'s."""

from __future__ import annotations

from recforge.registry import register_trainer
from recforge.trainer.callbacks import Callback, without_gradients
from recforge.trainer.objectives import Cycle, Every, Objective
from recforge.trainer.trainer import Trainer


@register_trainer
class KGTrainer(Trainer):
    """``train_rec_step`` epochs of the recommendation loss, then ``train_kg_step`` epochs of ``calculate_kg_loss``
    on triple batches, in cycles; when either is unset (RecBole's default), ``calculate_loss`` every epoch on
    interaction batches merged with triple batches (RSKG), or on interaction batches alone when the model's loss
    reads no triples (its ``uses_kg_batches`` is False)."""

    def build_objectives(self) -> list[Objective]:
        rec_step, kg_step = self.config.get("train_rec_step"), self.config.get("train_kg_step")
        if rec_step is None or kg_step is None:
            merged = getattr(self.model, "uses_kg_batches", True)
            return [Objective("rec+kg" if merged else "rec", loss="calculate_loss", data="rskg" if merged else "rs")]
        period = rec_step + kg_step
        return [
            Objective("rec", loss="calculate_loss", data="rs", schedule=Cycle(period, 0, rec_step)),
            Objective("kg", loss="calculate_kg_loss", data="kg", schedule=Cycle(period, rec_step, period)),
        ]


class AttentionRefresh(Callback):
    """KGAT: after each epoch's training, recompute the attention over the knowledge graph without gradients."""

    def on_train_end(self, trainer, epoch, loss) -> None:
        with without_gradients(trainer.model):
            trainer.model.update_attentive_A()


@register_trainer
class KGATTrainer(Trainer):
    """Every epoch: the recommendation loss on interaction batches, then ``calculate_kg_loss`` on triple batches,
    then ``update_attentive_A`` without gradients (the attention over the knowledge graph is refreshed)."""

    def __init__(self, config, model, **kwargs) -> None:
        super().__init__(config, model, **kwargs)
        self.callbacks.insert(0, AttentionRefresh())

    def build_objectives(self) -> list[Objective]:
        return [
            Objective("rec", loss="calculate_loss", data="rs"),
            Objective("kg", loss="calculate_kg_loss", data="kg"),
        ]


@register_trainer
class MKRTrainer(Trainer):
    """Every epoch ``calculate_rs_loss`` on interaction batches; every ``kge_interval`` epochs (from epoch 0) also
    ``calculate_kg_loss`` on triple batches."""

    def build_objectives(self) -> list[Objective]:
        return [
            Objective("rec", loss="calculate_rs_loss", data="rs"),
            Objective("kg", loss="calculate_kg_loss", data="kg", schedule=Every(self.config["kge_interval"])),
        ]
