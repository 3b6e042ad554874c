"""Docs that stay true: the generated config reference is current and the documented code runs."""

import re

import pytest
import torch

from conftest import ML100K, ROOT, tiny_config
from recforge.config.reference import markdown_reference


def code_blocks(path, language):
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.S)


def test_config_reference_is_current():
    assert (ROOT / "docs" / "config.md").read_text() == markdown_reference(), (
        "regenerate with: python -m recforge.config.reference > docs/config.md"
    )


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = code_blocks(ROOT / "README.md", "python")
    namespace = {}
    exec(first, namespace)
    assert namespace["result"]["test_result"]["ndcg@10"] > 0.1
    if not (ML100K / "ml-100k.inter").is_file():
        pytest.skip("ml-100k not in ../shared")
    exec(second.replace('"../shared/datasets"', repr(str(ML100K.parent))), namespace)
    assert namespace["test_result"]["recall@10"] > 0.05


def test_readme_names_exactly_two_commands_first():
    first_block = code_blocks(ROOT / "README.md", "bash")[0].strip().splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["bash scripts/demo.sh", "bash scripts/test.sh"]


def test_user_guide_custom_trainer_example(tiny_path):
    from recforge import create_dataset, data_preparation
    from recforge.models.general.bpr import BPR

    class TwoLossBPR(BPR):
        def calculate_loss(self, interaction):
            l2 = sum(p.pow(2).sum() for p in self.parameters()) * 1e-4
            return super().calculate_loss(interaction), l2

    config = tiny_config(tiny_path, TwoLossBPR, epochs=4)
    train, valid, _ = data_preparation(config, create_dataset(config))
    model = TwoLossBPR(config, train.dataset)
    example = code_blocks(ROOT / "docs" / "user-guide.md", "python")[0]
    namespace = {"config": config, "model": model}
    exec(example, namespace)
    trainer = namespace["trainer"]
    seen = []
    original = model.calculate_loss
    model.calculate_loss = lambda batch: seen.append(trainer.start_epoch) or original(batch)
    trainer.fit(train, valid, verbose=False, saved=False)
    assert sorted(set(seen)) == [0, 1, 2, 3]
    losses = trainer.train_loss_dict
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    # Even epochs optimise the BPR loss (about 0.69 per batch), odd epochs the small L2 term.
    assert losses[1] < losses[0] / 10 and losses[3] < losses[2] / 10


def guide_blocks():
    return code_blocks(ROOT / "docs" / "user-guide.md", "python")


def test_user_guide_objectives_example_alternates(tiny_path):
    from recforge import create_dataset, data_preparation
    from recforge.models.general.bpr import BPR

    class TwoLossBPR(BPR):
        def calculate_loss(self, interaction):
            return super().calculate_loss(interaction), sum(p.pow(2).sum() for p in self.parameters()) * 1e-4

    config = tiny_config(tiny_path, TwoLossBPR, epochs=4)
    train, valid, _ = data_preparation(config, create_dataset(config))
    namespace = {"config": config, "model": TwoLossBPR(config, train.dataset)}
    exec(guide_blocks()[1], namespace)
    trainer = namespace["trainer"]
    trainer.fit(train, valid, verbose=False, saved=False)
    losses = trainer.train_loss_dict
    assert losses[1] < losses[0] / 10 and losses[3] < losses[2] / 10  # a (BPR) on even epochs, b (L2) on odd


def test_user_guide_mixed_precision_example(tiny_path):
    from recforge import create_dataset, data_preparation, get_model_class

    config = tiny_config(tiny_path, "BPR", epochs=2, precision="fp16", train_batch_size=4)
    train, valid, _ = data_preparation(config, create_dataset(config))
    namespace = {"config": config, "model": get_model_class("BPR")(config, train.dataset)}
    exec(guide_blocks()[2], namespace)
    trainer = namespace["trainer"]
    trainer.fit(train, valid, verbose=False, saved=False)
    assert len(trainer.scales) == 2 * len(train) and all(s >= 1.0 for s in trainer.scales)
    assert trainer.precision.scaler.is_enabled()


def test_user_guide_custom_model_example(tiny_path):
    from recforge import Config, ConfigError, create_dataset, data_preparation, init_seed
    from recforge.registry import MODELS
    from recforge.trainer import Trainer

    namespace = {}
    exec(guide_blocks()[3], namespace)
    try:
        config = tiny_config(tiny_path, "DotMF", epochs=3, embedding_size=8, learning_rate=0.05)
        assert config["dropout"] == 0.0 and config["embedding_size"] == 8
        train, valid, test = data_preparation(config, create_dataset(config))
        init_seed(config["seed"], config["reproducibility"])  # the weights do not depend on earlier tests
        trainer = Trainer(config, namespace["DotMF"](config, train.dataset))
        trainer.fit(train, valid, verbose=False, saved=False)
        assert trainer.train_loss_dict[2] < trainer.train_loss_dict[0] and trainer.evaluate(test)["recall@3"] > 0
        with pytest.raises(ConfigError, match="'dropout': 1.5 is not a number >= 0 and <= 1"):
            Config("DotMF", config_dict={"dropout": 1.5}, cmd_args=[])
    finally:
        MODELS._entries.pop("dotmf", None)
