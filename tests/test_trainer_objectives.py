"""Objectives: which ran in which epoch, in RecBole's KG / MKR / KGAT / NCL trainers and in objectives of one's own."""

import pytest
import torch
from torch import nn

from conftest import tiny_config
from recforge import create_dataset, data_preparation, init_seed
from recforge.models.base import GeneralRecommender
from recforge.trainer import Cycle, Every, KGATTrainer, KGTrainer, MKRTrainer, NCLTrainer, Objective, Trainer


def test_schedules():
    due = lambda schedule: [e for e in range(10) if schedule.due(e)]
    assert due(Every(3)) == [0, 3, 6, 9]
    assert due(Every(4, offset=2)) == [2, 6]
    assert due(Cycle(3, 0, 2)) == [0, 1, 3, 4, 6, 7, 9]
    assert due(Cycle(3, 2, 3)) == [2, 5, 8]
    objective = Objective("o", schedule=Every(2), parts_from={1: 3})
    assert [objective.due(e) for e in range(4)] == [True, False, True, False]
    assert objective.parts_on(2) == {1: False} and objective.parts_on(3) == {1: True}


class Recorder(GeneralRecommender):
    """A small model with every loss and hook the KG / MKR / KGAT / NCL trainers call; records the calls."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.user = nn.Embedding(self.n_users, 4)
        self.item = nn.Embedding(self.n_items, 4)
        self.proto = nn.Parameter(torch.ones(4))
        self.calls: list[tuple[int, str]] = []
        self.trainer = None

    @property
    def epoch(self):
        return self.trainer.start_epoch  # the running epoch (it advances when the epoch completes)

    def _score(self, batch):
        return (self.user(batch["user_id"]) * self.item(batch["item_id"])).sum(-1)

    def calculate_loss(self, batch):
        self.calls.append((self.epoch, "rec"))
        main = (1 - torch.sigmoid(self._score(batch))).mean()
        return main, main * 0, (self.proto**2).sum() * 0.1  # NCL's shape: the prototype part last

    def calculate_rs_loss(self, batch):
        self.calls.append((self.epoch, "rs"))
        return (1 - torch.sigmoid(self._score(batch))).mean()

    def calculate_kg_loss(self, batch):
        self.calls.append((self.epoch, "kg"))
        return self.item.weight.pow(2).mean()

    def update_attentive_A(self):
        self.calls.append((self.epoch, f"attention grad={torch.is_grad_enabled()} train={self.training}"))

    def e_step(self, seed=None):
        self.calls.append((self.epoch, "e_step"))

    def full_sort_predict(self, batch):
        return self.user(batch["user_id"]) @ self.item.weight.T


class WithViews:
    """A training loader that also offers the views of a knowledge-aware loader ("kg" here a fixed batch)."""

    def __init__(self, train, kg_batches):
        self.train, self.dataset = train, train.dataset
        self.views = {"kg": kg_batches, "rs": train, "rskg": train}

    def __iter__(self):
        return iter(self.train)

    def __len__(self):
        return len(self.train)


def run(tiny_path, objectives=None, epochs=6, trainer_cls=Trainer, **overrides):
    config = tiny_config(tiny_path, Recorder, epochs=epochs, train_batch_size=100, **overrides)
    init_seed(0)
    train, valid, _ = data_preparation(config, create_dataset(config))
    model = Recorder(config, train.dataset)
    kg = [next(iter(train))]
    trainer = trainer_cls(config, model, objectives=objectives)
    model.trainer = trainer
    trainer.fit(WithViews(train, kg), None, verbose=False, saved=False)
    return model, trainer


def runs(model, name):
    return [epoch for epoch, call in model.calls if call == name]


def test_kg_trainer_alternates_by_epochs(tiny_path):
    model, trainer = run(tiny_path, trainer_cls=KGTrainer, train_rec_step=2, train_kg_step=1)
    assert runs(model, "rec") == [0, 1, 3, 4]
    assert runs(model, "kg") == [2, 5]
    joint, _ = run(tiny_path, trainer_cls=KGTrainer)
    assert runs(joint, "rec") == [0, 1, 2, 3, 4, 5] and runs(joint, "kg") == []


def test_mkr_trainer_trains_kg_every_interval(tiny_path):
    model, trainer = run(tiny_path, trainer_cls=MKRTrainer, kge_interval=3, epochs=7)
    assert runs(model, "rs") == list(range(7))
    assert runs(model, "kg") == [0, 3, 6]
    assert set(trainer.last_losses) == {"rec", "kg"} and trainer.last_losses["rec"] > 0  # epoch 6: both ran


def test_kgat_trainer_refreshes_attention_without_gradients(tiny_path):
    model, _ = run(tiny_path, trainer_cls=KGATTrainer, epochs=3)
    assert [call for epoch, call in model.calls if epoch == 1] == ["rec", "kg", "attention grad=False train=False"]
    assert runs(model, "attention grad=False train=False") == [0, 1, 2]


def test_ncl_trainer_e_step_and_warm_up(tiny_path):
    model, trainer = run(tiny_path, trainer_cls=NCLTrainer, m_step=2, warm_up_step=3, epochs=5)
    assert runs(model, "e_step") == [0, 2, 4]
    assert next(c for e, c in model.calls if e == 2) == "e_step"  # before the epoch trains
    proto = (model.proto.detach() ** 2).sum().item() * 0.1
    assert proto < 0.4  # the prototype part trained from epoch 3 on (starting at 0.4)
    assert trainer.last_losses["loss"][2] > 0  # epoch 4 reports it
    assert len(trainer.train_loss_dict) == 5


def test_warm_up_leaves_the_dropped_part_untrained(tiny_path):
    model, trainer = run(tiny_path, trainer_cls=NCLTrainer, m_step=10, warm_up_step=3, epochs=3)
    assert torch.equal(model.proto.detach(), torch.ones(4))  # never in the minimised sum during warm-up
    assert trainer.last_losses["loss"][2] == 0.0


def test_several_objectives_return_one_loss_each(tiny_path):
    model, trainer = run(tiny_path, trainer_cls=MKRTrainer, kge_interval=2, epochs=2)
    loss = trainer._train_epoch(WithViews(trainer.train_data.train, trainer.train_data.views["kg"]), 1)
    assert isinstance(loss, tuple) and len(loss) == 2 and loss[1] == 0.0  # kg not due in epoch 1


def test_alternating_losses_as_a_subclass_and_as_objectives_are_the_same(tiny_path):
    class Alternate(Trainer):
        def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
            pick = epoch_idx % 2
            return super()._train_epoch(train_data, epoch_idx, loss_func=lambda b: self.model.calculate_loss(b)[pick])

    by_subclass, _ = run(tiny_path, trainer_cls=Alternate, epochs=4)
    objectives = [
        Objective("first", loss=lambda b: by_objectives_model[0].calculate_loss(b)[0], schedule=Cycle(2, 0, 1)),
        Objective("second", loss=lambda b: by_objectives_model[0].calculate_loss(b)[1], schedule=Cycle(2, 1, 2)),
    ]
    by_objectives_model = []

    class Capture(Trainer):
        def __init__(self, config, model, **kwargs):
            by_objectives_model.append(model)
            super().__init__(config, model, **kwargs)

    by_objectives, _ = run(tiny_path, objectives=objectives, trainer_cls=Capture, epochs=4)
    for a, b in zip(by_subclass.parameters(), by_objectives.parameters(), strict=True):
        assert torch.equal(a, b)


def test_an_unknown_view(tiny_path):
    config = tiny_config(tiny_path, "BPR")
    train, _, _ = data_preparation(config, create_dataset(config))
    from recforge.models.general.bpr import BPR

    trainer = Trainer(config, BPR(config, train.dataset), objectives=[Objective("x", data="kg")])
    with pytest.raises(KeyError, match="wants data 'kg'"):
        trainer.fit(train, None, verbose=False, saved=False)
