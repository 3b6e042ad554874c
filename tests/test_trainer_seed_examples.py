"""The seed's trainer examples (RecBole's "Customize Trainers" page) run as written there: alternating
optimisation with the two-argument ``_train_epoch``, layer-specific learning rates through ``_build_optimizer``,
and mixed precision with ``enable_amp`` / ``enable_scaler``."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import amp, nn

from conftest import tiny_config
from recforge import GeneralRecommender, InputType, create_dataset, data_preparation, init_seed
from recforge.trainer import Trainer


class TwoLossModel(GeneralRecommender):
    """BPR with two losses: ``calculate_loss1`` trains the user embeddings, ``calculate_loss2`` the items'. Every
    call is recorded, so a test can tell which loss trained in which epoch."""

    input_type = InputType.PAIRWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.user_embedding = nn.Embedding(self.n_users, 4)
        self.item_embedding = nn.Embedding(self.n_items, 4)
        self.calls: list[str] = []

    def _scores(self, interaction, detach_users: bool, detach_items: bool):
        user = self.user_embedding(interaction[self.USER_ID])
        pos = self.item_embedding(interaction[self.ITEM_ID])
        neg = self.item_embedding(interaction[self.NEG_ITEM_ID])
        user = user.detach() if detach_users else user
        pos, neg = (pos.detach(), neg.detach()) if detach_items else (pos, neg)
        return -torch.nn.functional.logsigmoid((user * pos).sum(-1) - (user * neg).sum(-1)).mean()

    def calculate_loss1(self, interaction):
        self.calls.append("loss1")
        return self._scores(interaction, detach_users=False, detach_items=True)

    def calculate_loss2(self, interaction):
        self.calls.append("loss2")
        return self._scores(interaction, detach_users=True, detach_items=False)

    def calculate_loss(self, interaction):
        return self._scores(interaction, False, False)

    def predict(self, interaction):
        return (self.user_embedding(interaction[self.USER_ID]) * self.item_embedding(interaction[self.ITEM_ID])).sum(-1)

    def full_sort_predict(self, interaction):
        return self.user_embedding(interaction[self.USER_ID]) @ self.item_embedding.weight.T


class NewTrainer(Trainer):
    """The page's example, as written there (RecBole's two-argument ``_train_epoch``)."""

    def __init__(self, config, model):
        super().__init__(config, model)

    def _train_epoch(self, train_data, epoch_idx):
        self.model.train()
        total_loss = 0.0

        if epoch_idx % 2 == 0:
            for batch_idx, interaction in enumerate(train_data):  # noqa: B007
                interaction = interaction.to(self.device)
                self.optimizer.zero_grad()
                loss = self.model.calculate_loss1(interaction)
                self._check_nan(loss)
                loss.backward()
                self.optimizer.step()
                total_loss += loss.item()
        else:
            for batch_idx, interaction in enumerate(train_data):  # noqa: B007
                interaction = interaction.to(self.device)
                self.optimizer.zero_grad()
                loss = self.model.calculate_loss2(interaction)
                self._check_nan(loss)
                loss.backward()
                self.optimizer.step()
                total_loss += loss.item()
        return total_loss


def prepared(tiny_path, **values):
    config = tiny_config(tiny_path, TwoLossModel, checkpoint_dir=str(tiny_path / "saved"), **values)
    init_seed(config["seed"])
    train, valid, test = data_preparation(config, create_dataset(config))
    init_seed(config["seed"])
    return config, TwoLossModel(config, train.dataset), train, valid, test


def test_alternating_optimisation_example(tiny_path):
    config, model, train, valid, test = prepared(tiny_path, epochs=4, train_batch_size=4, learning_rate=0.05)
    trainer = NewTrainer(config, model)
    users, items = model.user_embedding.weight.detach().clone(), model.item_embedding.weight.detach().clone()
    trainer.fit(train, valid, verbose=False)
    n = len(train)  # 12 training interactions, 4 per batch
    assert n == 3 and model.calls == ["loss1"] * n + ["loss2"] * n + ["loss1"] * n + ["loss2"] * n
    assert not torch.equal(users, model.user_embedding.weight) and not torch.equal(items, model.item_embedding.weight)
    assert set(trainer.train_loss_dict) == {0, 1, 2, 3} and all(v > 0 for v in trainer.train_loss_dict.values())
    assert trainer.checkpoint_path("last").is_file() and trainer.evaluate(test)["recall@3"] >= 0


def test_alternating_optimisation_changes_only_the_trained_part(tiny_path):
    config, model, train, valid, _ = prepared(tiny_path, epochs=1, train_batch_size=4, learning_rate=0.05)
    items = model.item_embedding.weight.detach().clone()
    NewTrainer(config, model).fit(train, valid, verbose=False, saved=False)  # epoch 0: loss1, the users only
    assert torch.equal(items, model.item_embedding.weight)


class LayerRateTrainer(Trainer):
    """Layer-specific learning rates, RecBole's way: override ``_build_optimizer`` with parameter groups."""

    def _build_optimizer(self, **kwargs):
        user_ids = {id(p) for p in self.model.user_embedding.parameters()}
        rest = [p for p in self.model.parameters() if id(p) not in user_ids]
        groups = [
            {"params": list(self.model.user_embedding.parameters()), "lr": self.learning_rate * 10},
            {"params": rest},
        ]
        return torch.optim.SGD(groups, lr=self.learning_rate)


class LayerRateViaSuper(Trainer):
    def _build_optimizer(self, **kwargs):
        groups = [
            {"params": self.model.user_embedding.parameters(), "lr": 0.5},
            {"params": self.model.item_embedding.parameters()},
        ]
        return super()._build_optimizer(params=groups, learner="sgd")


def test_layer_specific_learning_rates_example(tiny_path):
    config, model, train, valid, _ = prepared(tiny_path, epochs=1, learning_rate=0.01, train_batch_size=100)
    trainer = LayerRateTrainer(config, model)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [0.1, 0.01]
    users, items = model.user_embedding.weight.detach().clone(), model.item_embedding.weight.detach().clone()
    generator = train.state_dict()
    batch = next(iter(train)).to(trainer.device)  # the one batch fit will train on
    train.load_state_dict(generator)
    model.calculate_loss(batch).backward()
    user_grad, item_grad = model.user_embedding.weight.grad.clone(), model.item_embedding.weight.grad.clone()
    model.zero_grad()
    trainer.fit(train, valid, verbose=False)  # one batch, one plain SGD step
    assert torch.allclose(users - model.user_embedding.weight, 0.1 * user_grad, atol=1e-7)
    assert torch.allclose(items - model.item_embedding.weight, 0.01 * item_grad, atol=1e-7)
    state = torch.load(trainer.checkpoint_path("last"), weights_only=True)
    assert [g["lr"] for g in state["optimizers"]["main"]["param_groups"]] == [0.1, 0.01]

    config, model, _, _, _ = prepared(tiny_path, learning_rate=0.01)
    via_super = LayerRateViaSuper(config, model)
    assert isinstance(via_super.optimizer, torch.optim.SGD)
    assert [g["lr"] for g in via_super.optimizer.param_groups] == [0.5, 0.01]


class AmpTrainer(Trainer):
    """Mixed precision written the RecBole way (autocast and a GradScaler inside ``_train_epoch``)."""

    autocast_dtypes: ClassVar[list[torch.dtype]] = []

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        self.model.train()
        loss_func = loss_func or self.model.calculate_loss
        total_loss = None
        scaler = amp.GradScaler(self.device.type, enabled=self.enable_scaler)
        for interaction in train_data:
            interaction = interaction.to(self.device)
            self.optimizer.zero_grad()
            with torch.autocast(device_type=self.device.type, enabled=self.enable_amp):
                self.autocast_dtypes.append(torch.get_autocast_dtype(self.device.type))
                assert torch.is_autocast_enabled(self.device.type) == self.enable_amp
                loss = loss_func(interaction)
            total_loss = loss.item() if total_loss is None else total_loss + loss.item()
            self._check_nan(loss)
            scaler.scale(loss).backward()
            scaler.step(self.optimizer)
            scaler.update()
        return total_loss


def test_mixed_precision_example(tiny_path):
    config, model, train, valid, test = prepared(tiny_path, epochs=2, enable_amp=True)
    trainer = AmpTrainer(config, model)
    assert trainer.enable_amp is True and trainer.enable_scaler is False  # CPU: bf16 autocast, no scaler
    trainer.fit(train, valid, verbose=False)
    assert set(AmpTrainer.autocast_dtypes) == {torch.bfloat16}
    assert all(torch.isfinite(torch.tensor(v)) for v in trainer.train_loss_dict.values())
    config, model, _, _, _ = prepared(tiny_path, precision="fp16")
    fp16 = AmpTrainer(config, model)
    assert fp16.enable_amp is True and fp16.enable_scaler is True
