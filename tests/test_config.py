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
        ({"eval_args": {"split": {"RS": [0.8, 0.1, 0.2]}}}, r"the ratios \[0.8, 0.1, 0.2\] sum to 1.1, not 1"),
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
        ({"learning_rate": "fast"}, r"'learning_rate': 'fast' is not a number > 0"),
        ({"learning_rate": 0}, "is not a number > 0"),
        ({"epochs": 2.5}, r"'epochs': 2.5 is not an integer >= 0"),
        ({"learner": "adamm"}, r"did you mean 'adam'"),
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
