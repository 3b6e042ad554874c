"""Scripts written for RecBole run with only the package name changed, and custom models / trainers work from
Python, the command line and ``recforge evaluate``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import recforge
from conftest import ML100K, ROOT, needs_ml100k, tiny_args, tiny_config
from recforge import GeneralRecommender, InputType, create_dataset, data_preparation, register_trainer
from recforge.cli import main
from recforge.registry import MODELS, TRAINERS, get_trainer
from recforge.trainer import Trainer

RUN_FOLDER_FILES = {"config.yaml", "run.log", "history.jsonl", "metrics.json", "checkpoints"}
RUN_EXTRAS = {"serving.npz", "report.html"}  # data for recforge.load, the HTML report: the trainer writes them

# RecBole's documented "use modules" pipeline (docs: user_guide/usage/use_modules), written the RecBole way with
# only the package name changed.
USE_MODULES = """
from logging import getLogger
from recforge.config import Config
from recforge.data import create_dataset, data_preparation
from recforge.model.general_recommender import BPR
from recforge.trainer import Trainer
from recforge.utils import init_seed, init_logger

if __name__ == '__main__':
    config = Config(model='BPR', dataset='ml-100k')
    init_seed(config['seed'], config['reproducibility'])
    init_logger(config)
    logger = getLogger()
    logger.info(config)
    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = BPR(config, train_data.dataset).to(config['device'])
    logger.info(model)
    trainer = Trainer(config, model)
    best_valid_score, best_valid_result = trainer.fit(train_data, valid_data)
    test_result = trainer.evaluate(test_data)
    print(test_result)
"""

# RecBole's "customize models" example: a model that declares nothing, reads embedding_size, gets the loader.
NEW_MODEL = """
import torch
import torch.nn as nn

from recforge.utils import InputType
from recforge.model.abstract_recommender import GeneralRecommender
from recforge.model.loss import BPRLoss
from recforge.model.init import xavier_normal_initialization


class NewModel(GeneralRecommender):
    input_type = InputType.PAIRWISE

    def __init__(self, config, dataset):
        super(NewModel, self).__init__(config, dataset)
        self.n_users = dataset.user_num
        self.n_items = dataset.item_num
        self.embedding_size = config['embedding_size']
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size)
        self.loss = BPRLoss()
        self.apply(xavier_normal_initialization)

    def calculate_loss(self, interaction):
        user_e = self.user_embedding(interaction[self.USER_ID])
        pos_e = self.item_embedding(interaction[self.ITEM_ID])
        neg_e = self.item_embedding(interaction[self.NEG_ITEM_ID])
        return self.loss(torch.mul(user_e, pos_e).sum(dim=1), torch.mul(user_e, neg_e).sum(dim=1))

    def predict(self, interaction):
        user_e = self.user_embedding(interaction[self.USER_ID])
        return torch.mul(user_e, self.item_embedding(interaction[self.ITEM_ID])).sum(dim=1)

    def full_sort_predict(self, interaction):
        user_e = self.user_embedding(interaction[self.USER_ID])
        return torch.matmul(user_e, self.item_embedding.weight.transpose(0, 1))
"""

RUN_NEW_MODEL = """
from logging import getLogger
from recforge.utils import init_logger, init_seed
from recforge.trainer import Trainer
from newmodel import NewModel
from recforge.config import Config
from recforge.data import create_dataset, data_preparation

if __name__ == '__main__':
    config = Config(model=NewModel, dataset='ml-100k')
    init_seed(config['seed'], config['reproducibility'])
    init_logger(config)
    logger = getLogger()
    logger.info(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = NewModel(config, train_data).to(config['device'])
    trainer = Trainer(config, model)
    best_valid_score, best_valid_result = trainer.fit(train_data, valid_data)
    test_result = trainer.evaluate(test_data)
    logger.info('test result: {}'.format(test_result))
"""


def run_script(folder: Path, name: str, text: str, *args: str) -> subprocess.CompletedProcess:
    """Run a script in ``folder`` (whose ``dataset/ml-100k`` points at the shared copy) with recforge importable."""
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    (folder / "dataset").mkdir(exist_ok=True)
    link = folder / "dataset" / "ml-100k"
    if not link.exists():
        link.symlink_to(ML100K, target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(folder)])}
    return subprocess.run(
        [sys.executable, name, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.slow
@needs_ml100k
def test_recbole_use_modules_script_runs_and_writes_the_run_folder(tmp_path):
    done = run_script(tmp_path, "run.py", USE_MODULES, "--epochs=2", "--show_progress=False")
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "saved").iterdir()
    assert run_dir.name.startswith("BPR-ml-100k-")
    assert {p.name for p in run_dir.iterdir()} == RUN_FOLDER_FILES | RUN_EXTRAS
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"last.pth", "best.pth"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    test_result = eval(done.stdout.strip().splitlines()[-1])  # the script prints the result dict
    assert metrics["test_result"] == pytest.approx(test_result) and metrics["epochs_run"] == 2
    log = (run_dir / "run.log").read_text()
    assert "learning_rate = 0.001" in log  # the script's own logger.info(config), logged before the folder existed
    assert "epoch 1 evaluating" in log
    assert len((run_dir / "history.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
@needs_ml100k
def test_recbole_custom_model_example_runs_with_its_command_line(tmp_path):
    (tmp_path / "newmodel.py").write_text(textwrap.dedent(NEW_MODEL), encoding="utf-8")
    done = run_script(tmp_path, "run.py", RUN_NEW_MODEL, "--embedding_size=8", "--epochs=1", "--show_progress=False")
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "saved").iterdir()
    assert run_dir.name.startswith("NewModel-ml-100k-")
    config = json.loads(json.dumps(__import__("yaml").safe_load((run_dir / "config.yaml").read_text())))
    assert config["embedding_size"] == 8 and config["epochs"] == 1
    assert "test result: {'recall@10'" in done.stderr


def test_pipeline_wired_by_hand_writes_the_same_run_folder_as_run(tiny_path):
    config = tiny_config(tiny_path, "BPR", epochs=2, checkpoint_dir=str(tiny_path / "by_hand"))
    recforge.init_seed(config["seed"], config["reproducibility"])
    recforge.init_logger(config)
    train, valid, test = data_preparation(config, create_dataset(config))
    recforge.init_seed(config["seed"], config["reproducibility"])
    model = recforge.get_model(config["model"])(config, train.dataset)
    trainer = recforge.get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.fit(train, valid)
    test_result = trainer.evaluate(test)
    (by_hand,) = (tiny_path / "by_hand").iterdir()
    result = recforge.run("BPR", "tiny", config_dict={**config.to_dict(), "checkpoint_dir": str(tiny_path / "run")})
    ran = Path(result["run_dir"])
    assert {p.name for p in by_hand.iterdir()} == RUN_FOLDER_FILES | RUN_EXTRAS  # a script wired by hand, too
    assert {p.name for p in ran.iterdir()} == RUN_FOLDER_FILES | RUN_EXTRAS
    hand_metrics = json.loads((by_hand / "metrics.json").read_text())
    run_metrics = json.loads((ran / "metrics.json").read_text())
    assert hand_metrics.keys() == run_metrics.keys()
    assert hand_metrics["test_result"] == test_result == run_metrics["test_result"]
    # serving.npz holds every split (the test one added when the script evaluated it): recforge.load recommends
    # from the hand-wired run exactly as from recforge.run's.
    from recforge.trainer.serving_file import ServingData

    assert set(ServingData.read(by_hand / "serving.npz").histories) == {"train", "valid", "test"}
    users = ["u1", "u2", "u3", "u4"]
    by_hand_top = recforge.load(by_hand / "checkpoints" / "best.pth").recommend(users, k=3)
    assert by_hand_top.equals(recforge.load(ran / "checkpoints" / "best.pth").recommend(users, k=3))


def test_a_loader_may_stand_for_its_data_set(tiny_path):
    config = tiny_config(tiny_path, "BPR")
    train, _, _ = data_preparation(config, create_dataset(config))
    assert (train.user_num, train.item_num) == (train.dataset.user_num, train.dataset.item_num) == (5, 7)
    model = recforge.get_model("BPR")(config, train)  # RecBole's docs pass train_data itself
    assert model.n_items == 7


PLUGIN = """
import torch
from torch import nn
from recforge.model.abstract_recommender import GeneralRecommender
from recforge.trainer import Trainer
from recforge.utils import InputType


class TwoTower(GeneralRecommender):
    input_type = InputType.PAIRWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.user = nn.Embedding(self.n_users, config["embedding_size"])
        self.item = nn.Embedding(self.n_items, config["embedding_size"])

    def calculate_loss(self, batch):
        u = self.user(batch[self.USER_ID])
        pos = (u * self.item(batch[self.ITEM_ID])).sum(-1)
        neg = (u * self.item(batch[self.NEG_ITEM_ID])).sum(-1)
        return -torch.nn.functional.logsigmoid(pos - neg).mean()

    def predict(self, batch):
        return (self.user(batch[self.USER_ID]) * self.item(batch[self.ITEM_ID])).sum(-1)

    def full_sort_predict(self, batch):
        return self.user(batch[self.USER_ID]) @ self.item.weight.T


class TwoTowerTrainer(Trainer):
    trained_epochs = 0

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        type(self).trained_epochs += 1
        return super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
"""


def test_custom_model_and_trainer_from_the_command_line(tiny_path, monkeypatch, capsys):
    (tiny_path / "twotower.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    monkeypatch.chdir(tiny_path)
    monkeypatch.syspath_prepend(str(tiny_path))
    try:
        args = [*tiny_args(tiny_path, "TwoTower"), "--import", "twotower", "--embedding_size", "4", "--epochs", "2"]
        assert main(args) == 0
        assert MODELS.find("TwoTower") is not None and get_trainer(MODELS.find("TwoTower")).__name__ == (
            "TwoTowerTrainer"
        )
        assert sys.modules["twotower"].TwoTowerTrainer.trained_epochs == 2  # RecBole's <Model>Trainer naming rule
        (run_dir,) = (tiny_path / "saved").iterdir()
        capsys.readouterr()
        best = run_dir / "checkpoints" / "best.pth"
        assert main(["evaluate", "--import", "twotower", "--checkpoint", str(best), "--quiet"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"TwoTower on tiny, epoch {torch.load(best, weights_only=True)['epoch']} ({best})")
        assert "recall@3" in out
    finally:
        MODELS._entries.pop("twotower", None)
        TRAINERS._entries.pop("twotowertrainer", None)
        sys.modules.pop("twotower", None)


# RecBole's "customize trainers" example: a (config, model) constructor and the two-argument _train_epoch.
RECBOLE_TRAINER = """
from recforge.model.general_recommender import BPR
from recforge.trainer import Trainer


class AltBPR(BPR):
    pass


class AltBPRTrainer(Trainer):
    epochs_seen = 0

    def __init__(self, config, model):
        super(AltBPRTrainer, self).__init__(config, model)

    def _train_epoch(self, train_data, epoch_idx):
        type(self).epochs_seen += 1
        self.model.train()
        total_loss = 0.0
        for interaction in train_data:
            interaction = interaction.to(self.device)
            self.optimizer.zero_grad()
            loss = self.model.calculate_loss(interaction)
            self._check_nan(loss)
            loss.backward()
            self.optimizer.step()
            total_loss += loss.item()
        return total_loss
"""


@pytest.mark.parametrize("entry", ["cli", "run"])
def test_a_trainer_with_recboles_constructor_runs_from_the_cli_and_run(tiny_path, monkeypatch, entry):
    """quick_start passes callbacks to trainers that take them and adds them to the others: the run folder is
    complete (serving.npz, report.html) and the user's epoch loop trained."""
    (tiny_path / "alt_trainer.py").write_text(RECBOLE_TRAINER, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tiny_path))
    try:
        if entry == "cli":
            args = [*tiny_args(tiny_path, "AltBPR"), "--import", "alt_trainer", "--epochs", "2"]
            assert main(args) == 0
        else:
            from recforge.plugins import import_modules

            import_modules(["alt_trainer"])
            values = {**tiny_config(tiny_path).to_dict(), "epochs": 2}
            values.pop("model")
            recforge.run("AltBPR", "tiny", config_dict=values)
        assert sys.modules["alt_trainer"].AltBPRTrainer.epochs_seen == 2
        (run_dir,) = (tiny_path / "saved").iterdir()
        assert {p.name for p in run_dir.iterdir()} == RUN_FOLDER_FILES | RUN_EXTRAS
        assert len((run_dir / "history.jsonl").read_text().splitlines()) == 2
    finally:
        MODELS._entries.pop("altbpr", None)
        TRAINERS._entries.pop("altbprtrainer", None)
        sys.modules.pop("alt_trainer", None)


def test_import_error_is_one_line(tiny_path, capsys):
    assert main([*tiny_args(tiny_path), "--import", "no_such_module_here"]) == 2
    err = capsys.readouterr().err
    assert "recforge: error: --import no_such_module_here: cannot import it (No module named" in err
    assert len(err.strip().splitlines()) == 1


def test_register_trainer_and_recbole_get_trainer(tiny_path):
    class Shallow(GeneralRecommender):
        input_type = InputType.PAIRWISE

    @register_trainer
    class ShallowTrainer(Trainer):
        pass

    try:
        assert get_trainer(Shallow) is ShallowTrainer  # <Model>Trainer, also for an unregistered model class
        assert get_trainer(recforge.ModelType.GENERAL, "Shallow") is ShallowTrainer
        assert get_trainer(recforge.ModelType.GENERAL, "BPR") is Trainer
    finally:
        TRAINERS._entries.pop("shallowtrainer")


def test_layer_specific_learning_rates_by_param_groups(tiny_path):
    """RecBole's way: ``_build_optimizer`` over param groups; a group with learning rate 0 does not move."""

    class PerLayer(Trainer):
        def _build_optimizer(self, **kwargs):
            groups = [
                {"params": self.model.user_embedding.parameters()},
                {"params": self.model.item_embedding.parameters(), "lr": 0.0},
            ]
            return super()._build_optimizer(params=groups)

    config = tiny_config(tiny_path, "BPR", epochs=1, learner="sgd", learning_rate=0.1)
    train, valid, _ = data_preparation(config, create_dataset(config))
    model = recforge.get_model("BPR")(config, train.dataset)
    before_users, before_items = model.user_embedding.weight.clone(), model.item_embedding.weight.clone()
    trainer = PerLayer(config, model)
    trainer.fit(train, valid, verbose=False, saved=False)
    assert not torch.equal(model.user_embedding.weight, before_users)
    assert torch.equal(model.item_embedding.weight, before_items)  # the items' learning rate is 0


def test_models_of_an_installed_package_come_from_its_entry_points(monkeypatch):
    import importlib.metadata

    from recforge.registry import Registry

    class FromPlugin(GeneralRecommender):
        pass

    class Entry:
        name, value = "FromPlugin", "some_package.models:FromPlugin"

        def load(self):
            return FromPlugin

    seen = []
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: seen.append(group) or [Entry()])
    registry = Registry("model", entry_points="recforge.models")
    assert registry.find("fromplugin") is FromPlugin and seen == ["recforge.models"]
    assert registry.names() == ["FromPlugin"] and seen == ["recforge.models"]  # read once
