import logging

import pytest

from recforge.config import Config, parse_command_line
from recforge.errors import ConfigError
from recforge.models import model_names


def test_package_defaults_follow_recbole():
    config = Config("BPR")
    assert config["learning_rate"] == 0.001
    assert config["train_batch_size"] == 2048
    assert config["eval_args"] == {
        "split": {"RS": [0.8, 0.1, 0.1]},
        "group_by": "user",
        "order": "RO",
        "mode": {"valid": "full", "test": "full"},
    }
    assert config["train_neg_sample_args"]["sample_num"] == 1
    assert config["metrics"] == ["Recall", "MRR", "NDCG", "Hit", "Precision"]
    assert config["model"] == "BPR" and config["dataset"] == "ml-latest-small"
    assert config["embedding_size"] == 64  # the model's own default
    assert config["device"] == "cpu"


def test_layers_in_order(tmp_path):
    first = tmp_path / "a.yaml"
    first.write_text("learning_rate: 1e-3\nepochs: 7\nembedding_size: 32\ntopk: 5\n")
    second = tmp_path / "b.yaml"
    second.write_text("epochs: 8\n")
    config = Config(
        "bpr",
        config_file_list=[first, second],
        config_dict={"embedding_size": 16, "valid_metric": "NDCG@5"},
        cmd_args=["--embedding_size=8", "--learner", "SGD", "--reproducibility"],
    )
    assert config["learning_rate"] == 0.001  # YAML 1.1 reads 1e-3 as a string; the key's type parses it
    assert config["epochs"] == 8  # later file wins
    assert config["embedding_size"] == 8  # command line beats dict beats file
    assert config["topk"] == [5]  # a scalar becomes a list
    assert config["learner"] == "sgd"  # choices are case-insensitive
    assert config["reproducibility"] is True
    assert config.source("epochs") == f"config file {second}"
    assert config.source("embedding_size") == "the command line"


def test_dataset_defaults_layer_sits_below_user_layers():
    assert Config("BPR", "ml-100k")["load_col"] == {"inter": ["user_id", "item_id", "rating", "timestamp"]}
    assert Config("BPR", "ml-100k", config_dict={"load_col": {"inter": ["user_id", "item_id"]}})["load_col"] == {
        "inter": ["user_id", "item_id"]
    }


def test_struct_keys_merge_field_by_field_across_layers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("eval_args:\n  order: TO\n")
    config = Config("Pop", config_file_list=[path], config_dict={"eval_args": {"split": {"LS": "valid_and_test"}}})
    assert config["eval_args"]["order"] == "TO"
    assert config["eval_args"]["split"] == {"LS": "valid_and_test"}
    assert config["eval_args"]["group_by"] == "user"


def test_model_name_may_come_from_a_layer():
    assert Config(config_dict={"model": "itemknn", "k": 5})["model"] == "ItemKNN"


def test_parse_command_line_forms():
    assert parse_command_line(["--a=1", "--b", "x y", "--flag", "--c", "[1, 2]"]) == {
        "a": "1",
        "b": "x y",
        "flag": "true",
        "c": "[1, 2]",
    }
    with pytest.raises(ConfigError, match="unexpected command-line argument 'stray'"):
        parse_command_line(["stray"])


def test_unknown_key_names_the_closest_key():
    with pytest.raises(
        ConfigError, match=r"unknown config key 'learning_rat' in config_dict \(did you mean 'learning_rate'\?\)"
    ):
        Config("BPR", config_dict={"learning_rat": 0.1})


def test_key_of_another_model_is_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="recforge"):
        config = Config("BPR", config_dict={"k": 50})
    assert "k" not in config
    assert "k (config_dict): hyper-parameter of ItemKNN, MCCLK, not of BPR" in caplog.text


def test_ignored_recbole_keys_warn(caplog):
    with caplog.at_level(logging.WARNING, logger="recforge"):
        Config("BPR", config_dict={"save_dataset": True})
    assert "config keys accepted without effect:\n  save_dataset (config_dict): recforge caches processed data" in (
        caplog.text
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"eval_args": {"split": {"RS": [0, 1, 1]}}},
            r"train ratio must be > 0, got \[0.0, 1.0, 1.0\] \(RecBole would",
        ),
        ({"eval_args": {"split": {"RS": [0.8, -0.1, 0.3]}}}, r"'eval_args.split.RS': -0.1 is not a number >= 0"),
        ({"eval_args": {"split": {"RS": [0.5, 0.5, 0.1, 0.1]}}}, "needs 2 ratios"),
        ({"eval_args": {"split": {"XS": [1.0]}}}, "unknown split method 'XS'"),
        ({"eval_args": {"split": {"LS": "valid_and_test"}, "group_by": None}}, "needs group_by: user"),
        ({"eval_args": {"order": "XO"}}, r"'eval_args.order': 'XO' is not one of RO, TO"),
        ({"eval_args": {"ordr": "TO"}}, r"has no field 'ordr' \(did you mean 'order'\?\)"),
        ({"topk": [10, 0]}, r"config key 'topk': 0 is not an integer >= 1"),
        ({"topk": -5}, r"'topk': -5 is not an integer >= 1"),
        ({"metrics": ["Recal"]}, r"unknown metric 'Recal' \(did you mean 'recall'\?\)"),
        ({"valid_metric": "AUC"}, "is not among the computed metrics"),
        ({"valid_metric": "MRR@20"}, r"uses k=20, which is not in topk \[10\]"),
        ({"learning_rate": "fast"}, r"'learning_rate': 'fast' is not a number >= 0"),
        ({"learning_rate": -0.1}, "is not a number >= 0"),
        ({"stopping_step": -1}, "is not an integer >= 0"),
        ({"epochs": 2.5}, r"'epochs': 2.5 is not an integer >= 0"),
        ({"learner": "adamm"}, r"did you mean 'adam'\?\) \(RecBole would warn and train with Adam"),
        (
            {"eval_args": {"mode": "uni100"}, "metrics": ["AUC"], "valid_metric": "AUC@10"},
            r"AUC has no cut-off; write AUC \(RecBole would fail at the first validation",
        ),
        ({"train_neg_sample_args": {"sample_num": 0}}, r"'train_neg_sample_args.sample_num': 0"),
        ({"clip_grad_norm": {"max_nrm": 5}}, "clip_grad_norm"),
    ],
)
def test_bad_values_are_rejected_when_read(overrides, message):
    with pytest.raises(ConfigError, match=message):
        Config("BPR", config_dict=overrides)


def test_error_names_the_layer_that_set_the_value(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: many\n")
    with pytest.raises(ConfigError, match=rf"'epochs': 'many' is not an integer >= 0 \(set in config file {path}\)"):
        Config("BPR", config_file_list=[path])


def test_yaml_errors_name_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("epochs: 5\nmetrics: [Recall, NDCG\n")
    with pytest.raises(ConfigError, match=rf"config file {path}, line \d+, column \d+: invalid YAML"):
        Config("BPR", config_file_list=[path])
    with pytest.raises(ConfigError, match="does not exist"):
        Config("BPR", config_file_list=[tmp_path / "missing.yaml"])
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        Config("BPR", config_file_list=[listing])


def test_unknown_model_lists_models():
    with pytest.raises(
        ConfigError,
        match=r"unknown model 'BRP' \(did you mean 'BPR'\?\); available models: " + ", ".join(sorted(model_names())),
    ):
        Config("BRP")


def test_assignment_is_checked():
    config = Config("BPR")
    config["epochs"] = "12"
    assert config["epochs"] == 12
    with pytest.raises(ConfigError):
        config["epochs"] = -1
    with pytest.raises(ConfigError, match="unknown config key"):
        config["epoch"] = 3


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = Config("BPR", config_dict={"eval_args": {"order": "TO"}, "topk": [5, 10], "valid_metric": "MRR@5"})
    config.save(tmp_path / "config.yaml")
    again = Config(config_file_list=[tmp_path / "config.yaml"])
    assert again.to_dict() == config.to_dict()


# -- what RecBole accepts, in RecBole's normal form ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("ratios", "normalised"),
    [
        ([8, 1, 1], [0.8, 0.1, 0.1]),  # RecBole's user guide writes ratios this way
        ([16, 2, 2], [0.8, 0.1, 0.1]),
        ([4, 1], [0.8, 0.0, 0.2]),  # two ratios: train and test
        ([0.8, 0.2, 0.0], [0.8, 0.2, 0.0]),  # an empty test part
        ([0.5, 0.0, 0.5], [0.5, 0.0, 0.5]),  # an empty validation part
        ([0.7, 0.2, 0.1], [0.7, 0.2, 0.1]),  # sums to 1 within rounding: kept exactly as given
        ([0.8, 0.1, 0.2], [0.8 / 1.1, 0.1 / 1.1, 0.2 / 1.1]),
    ],
)
def test_split_ratios_are_divided_by_their_sum(ratios, normalised):
    split = Config("BPR", config_dict={"eval_args": {"split": {"RS": ratios}}}, cmd_args=[])["eval_args"]["split"]
    assert split == {"RS": normalised}


def test_zero_learning_rate_and_stopping_step_are_accepted():
    config = Config("BPR", config_dict={"learning_rate": 0, "stopping_step": 0}, cmd_args=[])
    assert config["learning_rate"] == 0.0 and isinstance(config["learning_rate"], float)
    assert config["stopping_step"] == 0


RECBOLE_NO_SAMPLING = {
    "distribution": "none",
    "sample_num": "none",
    "alpha": "none",
    "dynamic": False,
    "candidate_num": 0,
}


@pytest.mark.parametrize(
    "value", [None, "None", "~", {"distribution": None}, {"distribution": "none", "sample_num": 3}]
)
def test_no_negative_sampling_reads_as_recbole_form(value, tmp_path):
    config = Config("BPR", config_dict={"train_neg_sample_args": value}, cmd_args=[])
    args = config["train_neg_sample_args"]
    assert args == RECBOLE_NO_SAMPLING and isinstance(args, dict)
    assert not args  # false like the None it stands for: the loaders read "no sampling"
    assert config.to_dict()["train_neg_sample_args"] is None  # saved as ~
    config.save(tmp_path / "config.yaml")
    assert Config(config_file_list=[tmp_path / "config.yaml"], cmd_args=[])["train_neg_sample_args"] == args


def test_context_models_default_to_recbole_no_sampling_form():
    config = Config("FM", "ml-100k", cmd_args=[])
    assert config["train_neg_sample_args"] == RECBOLE_NO_SAMPLING
    assert Config("FM", config_dict={"train_neg_sample_args": {"sample_num": 2}}, cmd_args=[])[
        "train_neg_sample_args"
    ] == {"distribution": "uniform", "sample_num": 2, "alpha": 1.0, "dynamic": False, "candidate_num": 0}
    config["train_neg_sample_args"] = {"sample_num": 3}  # replaces "no sampling", completed from the defaults
    assert config["train_neg_sample_args"]["distribution"] == "uniform" and config["train_neg_sample_args"]
    bpr = Config("BPR", cmd_args=[])
    bpr["train_neg_sample_args"] = {"sample_num": 4}  # merged into a mapping
    assert bpr["train_neg_sample_args"]["sample_num"] == 4 and bpr["train_neg_sample_args"]["alpha"] == 1.0


def test_recbole_keys_without_effect_read_as_in_recbole():
    config = Config("BPR", cmd_args=[])
    assert config["worker"] == 0 and config["local_rank"] == 0 and config["save_dataset"] is False
    assert config["transform"] is None and config["wandb_project"] == "recbole"
    assert "worker" not in config.to_dict()  # accepted, not one of recforge's keys
    assert Config("BPR", config_dict={"worker": "4"}, cmd_args=[])["worker"] == 4  # the value given
    config["worker"] = 2  # RecBole scripts may set it; it stays without effect
    assert config["worker"] == 2 and "worker" not in config.to_dict()
    with pytest.raises(KeyError, match="unknown config key 'wrker'"):
        config["wrker"]


def test_legacy_recbole_keys_are_accepted_with_a_reason(caplog):
    with caplog.at_level(logging.WARNING, logger="recforge"):
        config = Config("BPR", config_dict={"eval_setting": "TO_LS,uni100", "split_ratio": [0.8, 0.1, 0.1]})
    assert "eval_setting, split_ratio (config_dict): RecBole < 1.0's evaluation setting" in caplog.text
    assert config["eval_setting"] == "TO_LS,uni100"


@pytest.mark.parametrize(("value", "text"), [(0, "0"), ("1", "1"), ((0, 1), "0,1"), ([2, 3], "2,3"), ("", "")])
def test_gpu_id_is_recbole_string(value, text):
    assert Config("BPR", config_dict={"gpu_id": value}, cmd_args=[])["gpu_id"] == text
    assert Config("BPR", cmd_args=[])["gpu_id"] == "0"


def test_gpu_id_picks_the_device(monkeypatch):
    import torch

    from recforge.config.machine import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device({"device": None, "use_gpu": True, "gpu_id": "1,0"}) == "cuda:1"
    assert resolve_device({"device": None, "use_gpu": True, "gpu_id": "-1"}) == "cpu"  # RecBole: no visible GPU
    assert resolve_device({"device": None, "use_gpu": True, "gpu_id": ""}) == "cpu"
    assert resolve_device({"device": None, "use_gpu": False, "gpu_id": "x"}) == "cpu"
    with pytest.raises(ConfigError, match=r"GPU 2 does not exist; .* \(RecBole's CUDA_VISIBLE_DEVICES=2 would hide"):
        resolve_device({"device": None, "use_gpu": True, "gpu_id": "2"})
    with pytest.raises(ConfigError, match="'gpu_id': 'GPU-1' is not a list of device numbers"):
        resolve_device({"device": None, "use_gpu": True, "gpu_id": "GPU-1"})


def test_eval_mode_of_one_phase_applies_to_both():
    mode = Config("BPR", config_dict={"eval_args": {"mode": {"valid": "uni100"}}}, cmd_args=[])["eval_args"]["mode"]
    assert mode == {"valid": "uni100", "test": "uni100"}


def test_default_valid_metric_follows_metrics_and_topk(caplog):
    with caplog.at_level(logging.WARNING, logger="recforge"):
        config = Config("BPR", config_dict={"topk": [50, 100]}, cmd_args=[])
    assert config["valid_metric"] == "MRR@50"
    assert "the default MRR@10 is not computed" in caplog.text and "RecBole would fail at the first validation" in (
        caplog.text
    )
    assert Config("BPR", config_dict={"metrics": ["Recall"], "topk": 5}, cmd_args=[])["valid_metric"] == "Recall@5"
    config["topk"] = [20]  # still the default: follows again
    assert config["valid_metric"] == "MRR@20"
    with pytest.raises(ConfigError, match=r"uses k=10, which is not in topk \[50\] \(RecBole would fail"):
        Config("BPR", config_dict={"topk": [50], "valid_metric": "MRR@10"}, cmd_args=[])


def test_valid_metric_bigger_follows_the_metric_unless_set(caplog):
    from recforge.config.checks import SMALLER_IS_BETTER
    from recforge.evaluator import smaller_metrics

    assert set(smaller_metrics) == SMALLER_IS_BETTER
    values = {"eval_args": {"mode": "labeled"}, "metrics": ["RMSE", "AUC"], "valid_metric": "RMSE"}
    assert Config("BPR", config_dict=values, cmd_args=[])["valid_metric_bigger"] is False
    assert Config("BPR", config_dict={**values, "valid_metric": "AUC"}, cmd_args=[])["valid_metric_bigger"] is True
    with caplog.at_level(logging.WARNING, logger="recforge"):
        config = Config("BPR", config_dict={**values, "valid_metric_bigger": True}, cmd_args=[])
    assert config["valid_metric_bigger"] is True
    assert "valid_metric_bigger is True, but RMSE is better when smaller" in caplog.text


def test_unknown_learner_says_what_recbole_would_do():
    with pytest.raises(ConfigError, match=r"'learner': 'foo' is not one of adam, .* \(RecBole would warn and train"):
        Config("BPR", config_dict={"learner": "foo"}, cmd_args=[])
