"""PretrainTrainer and S3RecTrainer: a pretraining stage saves RecBole's files every save_step epochs and at the
end, resumes from any of them exactly, and a fine-tuning stage loads one (or says clearly why it cannot)."""

from __future__ import annotations

import pytest
import torch

from recforge.errors import ConfigError, TrainingInterrupted
from recforge.quick_start import run
from recforge.registry import get_model_class, get_trainer
from recforge.trainer import PretrainTrainer, S3RecTrainer, Trainer
from recforge.trainer.checkpoint import load_checkpoint
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, write_cycle
from test_trainer_resume import InterruptAt, assert_same, summary

SMALL = {"hidden_size": 16, "inner_size": 32, "train_batch_size": 64}


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def pretraining(root, folder: str, **values):
    config = cycle_config(root, "S3Rec", checkpoint_dir=str(root / folder), **SMALL, **values)
    train = cycle_loaders(config)[0]
    init_seed(config["seed"])
    model = get_model_class("S3Rec")(config, train.dataset)
    return config, train, get_trainer(type(model))(config, model)


def test_s3rec_gets_its_trainer_under_recboles_names():
    assert get_trainer(get_model_class("S3Rec")) is S3RecTrainer
    assert get_trainer(None, "S3Rec") is S3RecTrainer
    assert issubclass(S3RecTrainer, PretrainTrainer) and issubclass(PretrainTrainer, Trainer)


def test_pretraining_saves_every_save_step_epochs_and_at_the_end(cycle_root):
    config, train, trainer = pretraining(cycle_root, "saves", pretrain_epochs=5, save_step=2, epochs=1)
    assert trainer.epochs == 5  # pretrain_epochs, not epochs
    assert trainer.fit(train, "validation is not used", verbose=False) == (-1, None)
    saved = sorted(p.name for p in (cycle_root / "saves").glob("*.pth"))
    assert saved == ["S3Rec-cycle-2.pth", "S3Rec-cycle-4.pth", "S3Rec-cycle-5.pth"]
    last = load_checkpoint(cycle_root / "saves" / "S3Rec-cycle-5.pth")
    assert last["epoch"] == 4 and last["model_name"] == "S3Rec"
    assert trainer.saved_pretrained_file == cycle_root / "saves" / "S3Rec-cycle-5.pth"
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(last["model"][name], value), name
    assert sorted(trainer.train_loss_dict) == [0, 1, 2, 3, 4]


def test_pretraining_resumed_from_a_saved_file_ends_where_one_run_ends(cycle_root):
    _, train, whole = pretraining(cycle_root, "whole", pretrain_epochs=3, save_step=1)
    whole.fit(train, verbose=False)
    _, train, resumed = pretraining(cycle_root, "resumed", pretrain_epochs=3, save_step=1)
    resumed.resume_checkpoint(cycle_root / "whole" / "S3Rec-cycle-1.pth")
    assert resumed.start_epoch == 1
    resumed.fit(train, verbose=False)
    assert sorted(p.name for p in (cycle_root / "resumed").glob("*.pth")) == ["S3Rec-cycle-2.pth", "S3Rec-cycle-3.pth"]
    one, two = (load_checkpoint(cycle_root / f / "S3Rec-cycle-3.pth")["model"] for f in ("whole", "resumed"))
    for name in one:
        assert torch.equal(one[name], two[name]), name
    assert resumed.train_loss_dict == whole.train_loss_dict


def test_finetuning_starts_from_the_pretrained_weights(cycle_root):
    _, train, trainer = pretraining(cycle_root, "source", pretrain_epochs=1, save_step=1)
    trainer.fit(train, verbose=False)
    path = cycle_root / "source" / "S3Rec-cycle-1.pth"
    config = cycle_config(cycle_root, "S3Rec", train_stage="finetune", pre_model_path=str(path), **SMALL)
    model = get_model_class("S3Rec")(config, train.dataset)
    for name, value in model.state_dict().items():
        assert torch.equal(value, trainer.model.state_dict()[name]), name
    finetune = get_trainer(type(model))(config, model)
    assert not finetune.pretraining and finetune.epochs == config["epochs"]


def test_pretraining_and_finetuning_through_run(cycle_root):
    common = {"data_path": str(cycle_root), "checkpoint_dir": str(cycle_root / "cli"), "load_col": None}
    common.update(SMALL, MAX_ITEM_LIST_LENGTH=8, data_cache=False, show_progress=False)
    first = run("S3Rec", "cycle", config_dict={**common, "pretrain_epochs": 2, "save_step": 5}, cmd_args={})
    assert first["best_valid_score"] == -1 and (cycle_root / "cli" / "S3Rec-cycle-2.pth").is_file()
    path = str(cycle_root / "cli" / "S3Rec-cycle-2.pth")
    second = run(
        "S3Rec",
        "cycle",
        config_dict={**common, "train_stage": "finetune", "pre_model_path": path, "epochs": 2},
        cmd_args={},
    )
    assert second["best_valid_score"] >= 0 and set(second["test_result"]) >= {"recall@10", "ndcg@10"}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "config key 'pre_model_path' is empty: the fine-tuning stage of S3Rec needs the file"),
        ("missing.pth", "config key 'pre_model_path': .*missing.pth does not exist"),
    ],
)
def test_a_missing_pretrained_file_is_one_clear_line(cycle_root, path, message):
    config = cycle_config(cycle_root, "S3Rec", train_stage="finetune", pre_model_path=path)
    train = cycle_loaders(config)[0]
    with pytest.raises(ConfigError, match=message):
        get_model_class("S3Rec")(config, train.dataset)


def test_a_mismatched_pretrained_file_is_one_clear_line(cycle_root):
    _, train, trainer = pretraining(cycle_root, "mismatch", pretrain_epochs=1, save_step=1)
    trainer.fit(train, verbose=False)
    path = str(cycle_root / "mismatch" / "S3Rec-cycle-1.pth")
    config = cycle_config(cycle_root, "S3Rec", train_stage="finetune", pre_model_path=path, hidden_size=8)
    with pytest.raises(ConfigError, match=r"config key 'pre_model_path': .* does not fit this S3Rec \(size mismatch"):
        get_model_class("S3Rec")(config, train.dataset)
    sasrec = cycle_config(cycle_root, "SASRec", checkpoint_dir=str(cycle_root / "other"), epochs=1)
    model = get_model_class("SASRec")(sasrec, train.dataset)
    Trainer(sasrec, model).fit(train, verbose=False)
    other = next((cycle_root / "other").glob("*/checkpoints/last.pth"))
    config = cycle_config(cycle_root, "S3Rec", train_stage="finetune", pre_model_path=str(other))
    with pytest.raises(ConfigError, match="holds a SASRec model, not a pretrained S3Rec"):
        get_model_class("S3Rec")(config, train.dataset)
    (cycle_root / "broken.pth").write_bytes(b"not a checkpoint")
    config = cycle_config(cycle_root, "S3Rec", train_stage="finetune", pre_model_path=str(cycle_root / "broken.pth"))
    with pytest.raises(ConfigError, match="cannot be read"):
        get_model_class("S3Rec")(config, train.dataset)


def test_pretrain_needs_a_model_in_a_pretraining_stage(cycle_root):
    config = cycle_config(cycle_root, "SASRec")
    train = cycle_loaders(config)[0]
    trainer = PretrainTrainer(config, get_model_class("SASRec")(config, train.dataset))
    with pytest.raises(ConfigError, match="config key 'train_stage': PretrainTrainer.pretrain needs a model in a"):
        trainer.pretrain(train)


def test_a_pretraining_stage_needs_pretrain_epochs(cycle_root):
    config = cycle_config(cycle_root, "SASRec")
    train = cycle_loaders(config)[0]
    model = get_model_class("SASRec")(config, train.dataset)
    model.train_stage = "pretrain"  # a model of one's own with a pretraining stage but no pretrain_epochs key
    with pytest.raises(ConfigError, match="config key 'pretrain_epochs': a pretraining stage needs a positive"):
        PretrainTrainer(config, model)


def test_a_file_pretrained_on_another_data_set_is_refused(cycle_root, tmp_path):
    _, train, trainer = pretraining(cycle_root, "elsewhere", pretrain_epochs=1, save_step=1)
    trainer.fit(train, verbose=False)
    renamed = tmp_path / "renamed"  # the same interactions under another data set name: same sizes
    (renamed / "other").mkdir(parents=True)
    for part in ("inter", "item"):
        (renamed / "other" / f"other.{part}").write_bytes((cycle_root / "cycle" / f"cycle.{part}").read_bytes())
    path = str(cycle_root / "elsewhere" / "S3Rec-cycle-1.pth")
    config = cycle_config(renamed, "S3Rec", train_stage="finetune", pre_model_path=path, **SMALL)
    config = type(config)("S3Rec", "other", config_dict={**config.to_dict(), "dataset": "other"}, cmd_args=[])
    other = cycle_loaders(config)[0]
    with pytest.raises(ConfigError, match="was pretrained on data set 'cycle', not 'other'"):
        get_model_class("S3Rec")(config, other.dataset)


def test_finetuning_interrupted_and_resumed_ends_where_one_run_ends(cycle_root):
    """Across the pretrain -> finetune boundary: a fine-tuning run (built from ``pre_model_path``) stopped after
    epoch 2 and resumed from its last checkpoint equals an uninterrupted one bit for bit (the resumed model is
    built from the pretrained file again, then the checkpoint's weights replace it)."""
    _, train, trainer = pretraining(cycle_root, "boundary", pretrain_epochs=1, save_step=1)
    trainer.fit(train, verbose=False)
    path = str(cycle_root / "boundary" / "S3Rec-cycle-1.pth")

    def finetuning(run: str, seed: int):
        config = cycle_config(cycle_root, "S3Rec", train_stage="finetune", pre_model_path=path, **SMALL, epochs=4)
        train, valid, test = cycle_loaders(config)
        init_seed(seed)
        model = get_model_class("S3Rec")(config, train.dataset)
        return get_trainer(type(model))(config, model, run_dir=cycle_root / run), train, valid, test

    straight, train, valid, test = finetuning("ft-straight", 2020)
    straight.fit(train, valid, verbose=False)
    expected = summary(straight, test)
    first, train, valid, _ = finetuning("ft-stopped", 2020)
    first.callbacks.append(InterruptAt(2))
    with pytest.raises(TrainingInterrupted):
        first.fit(train, valid, verbose=False)
    resumed, train, valid, test = finetuning("ft-stopped", 99)
    resumed.resume_checkpoint(cycle_root / "ft-stopped" / "checkpoints" / "last.pth")
    resumed.fit(train, valid, verbose=False)
    assert_same(summary(resumed, test), expected)
