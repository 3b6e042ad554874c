"""RecBole's own configuration files load unchanged; typos are still refused, all of them in one message."""

from __future__ import annotations

import importlib.util
import logging
import re

import pytest
import yaml

from conftest import ROOT
from recforge import Config
from recforge.config.compat import NO_EFFECT
from recforge.config.keys import PACKAGE_KEYS
from recforge.errors import ConfigError
from recforge.registry import model_names, recbole_catalog

PROPERTIES = ROOT.parent / "shared" / "recbole-properties"
needs_properties = pytest.mark.skipif(
    not (PROPERTIES / "overall.yaml").is_file(), reason="no ../shared/recbole-properties"
)
FILES = sorted(PROPERTIES.rglob("*.yaml")) if PROPERTIES.is_dir() else []


def config_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


@needs_properties
def test_catalog_is_what_the_generator_writes():
    spec = importlib.util.spec_from_file_location("generator", ROOT / "scripts" / "generate_recbole_catalog.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    committed = (ROOT / "src" / "recforge" / "registry" / "recbole_catalog.py").read_text(encoding="utf-8")
    assert generator.render(PROPERTIES, "1.2.1") == committed
    assert len(recbole_catalog.MODEL_KEYS) == 93


def test_every_recbole_setting_is_used_or_has_a_reason():
    """Works without ../shared: the catalog is part of the package."""
    used = {k.name for k in PACKAGE_KEYS}
    settings = {key for keys in recbole_catalog.SETTING_FILES.values() for key in keys}
    assert settings - used - set(NO_EFFECT) == set()


@pytest.mark.slow
@needs_properties
@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(PROPERTIES)) for p in FILES])
def test_recbole_file_loads_unchanged_with_every_model(path, caplog):
    overall = PROPERTIES / "overall.yaml"
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for model in model_names():
        for files in ([path], [overall, path]):
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                config = Config(model, config_file_list=files, cmd_args=[])
            records = config_warnings(caplog)
            assert len(records) <= 1, [r.getMessage() for r in records]  # every ignored key in one message
            for key, value in values.items():
                silent = value is None or recbole_catalog.DEFAULTS.get(key, object()) == value
                assert key in config or key in config.ignored_keys or silent, (model, key)
                if key in config.ignored_keys:
                    assert f"{key}" in records[0].getMessage() or " more (" in records[0].getMessage()


@needs_properties
def test_stock_ml100k_yaml_loads_silently_and_is_used(caplog):
    with caplog.at_level(logging.WARNING):
        config = Config("BPR", config_file_list=[PROPERTIES / "dataset" / "ml-100k.yaml"], cmd_args=[])
    assert config_warnings(caplog) == []
    assert config["load_col"] == {"inter": ["user_id", "item_id", "rating", "timestamp"]}
    assert config["normalize_all"] is True


def test_ignored_keys_are_reported_together_with_their_reasons(caplog):
    values = {
        "local_rank": 3,
        "repeatable": True,
        "hidden_dropout_prob": 0.2,
        "n_layers": 3,
        "worker": 0,
        "ml-1m": "https://example.org/ml-1m.zip",
    }
    with caplog.at_level(logging.WARNING):
        config = Config("BPR", config_dict=values, cmd_args=[])
    (record,) = config_warnings(caplog)
    message = record.getMessage()
    assert "local_rank (config_dict): each process reads its rank from the launcher's environment" in message
    assert "repeatable (config_dict): sequential models always sample repeatably" in message
    owners = re.search(r"n_layers \(config_dict\): hyper-parameter of ([\w, ]+), not of BPR", message).group(1)
    assert {"LightGCN", "NCL", "SASRec", "SGL", "SimGCL"} <= set(owners.split(", "))
    assert re.search(
        r"hidden_dropout_prob \(config_dict\): hyper-parameter of [\w, ]*SASRec[\w, ]*, not of BPR", message
    )
    assert "ml-1m (config_dict): a download address from RecBole's dataset/url.yaml" in message
    assert "worker" not in message  # RecBole's own default asks for nothing
    assert set(config.ignored_keys) == {"local_rank", "repeatable", "hidden_dropout_prob", "n_layers", "ml-1m"}
    assert "local_rank" not in config and config["local_rank"] == 3  # not recforge's key; reads as given


def test_every_unknown_key_in_one_error_with_close_suggestions_only():
    with pytest.raises(ConfigError) as info:
        Config(
            "BPR",
            config_dict={"learning_rat": 0.01, "embeding_size": 8, "entity_kg_num": 3},
            cmd_args=["--stoping_step", "3"],
        )
    message = str(info.value)
    assert message.startswith("unknown config keys: ")
    assert "'learning_rat' in config_dict (did you mean 'learning_rate'?)" in message
    assert "'embeding_size' in config_dict (did you mean 'embedding_size'?)" in message
    assert "'stoping_step' in the command line (did you mean 'stopping_step'?)" in message
    assert "'entity_kg_num' in config_dict;" in message or message.endswith("'entity_kg_num' in config_dict")
    assert "user_inter_num_interval" not in message  # not close enough to suggest


def test_recbole_model_recforge_lacks_is_named_as_such():
    from recforge.registry import RECBOLE_MODELS, model_names

    missing = sorted(set(RECBOLE_MODELS) - set(model_names()))[0]
    with pytest.raises(ConfigError, match=f"(?i){missing} is a RecBole model that recforge does not implement yet"):
        Config(missing.lower(), cmd_args=[])
    with pytest.raises(ConfigError, match=r"unknown model 'BRP' \(did you mean 'BPR'\?\)"):
        Config("BRP", cmd_args=[])


@needs_properties
def test_another_models_recbole_file_sets_nothing_of_this_model(caplog):
    files = [PROPERTIES / "model" / "SHAN.yaml", PROPERTIES / "model" / "LightGCN.yaml"]
    with caplog.at_level(logging.WARNING):
        config = Config("LightGCN", config_file_list=files, cmd_args=[])
    assert config["reg_weight"] == 1e-05 and config["n_layers"] == 2  # from LightGCN.yaml; SHAN's list ignored
    assert "reg_weight" in config.ignored_keys and "hyper-parameter of RecBole's SHAN (its model file)" in caplog.text
    own = Config("LightGCN", config_file_list=[PROPERTIES / "model" / "LightGCN.yaml"], cmd_args=[])
    assert own.ignored_keys == {}


def test_legacy_neg_sampling_is_read_as_train_neg_sample_args():
    config = Config("BPR", config_dict={"neg_sampling": {"popularity": 3}}, cmd_args=[])
    assert config["train_neg_sample_args"]["distribution"] == "popularity"
    assert config["train_neg_sample_args"]["sample_num"] == 3


def test_value_metrics_in_sampled_mode_and_not_in_full_mode():
    config = Config(
        "BPR",
        config_dict={"eval_args": {"mode": "uni100"}, "metrics": ["AUC", "LogLoss"], "valid_metric": "AUC"},
        cmd_args=[],
    )
    assert config["eval_args"]["mode"] == {"valid": "uni100", "test": "uni100"}
    from recforge.evaluation.evaluator import check_mode

    check_mode(["AUC", "LogLoss"], "sampled", "valid")
    with pytest.raises(ConfigError, match="metric AUC compares predictions with labels, but eval_args.mode.valid is"):
        check_mode(["AUC"], "full", "valid")  # when a full-ranking loader is evaluated (the config is accepted)


def test_script_arguments_are_read_as_recbole_reads_them():
    from recforge.config.sources import script_arguments

    found, unused = script_arguments(["run.py", "--epochs=3", "--embedding_size=16", "-v", "--flag", "data"])
    assert found == {"epochs": "3", "embedding_size": "16"}
    assert unused == ["-v", "--flag", "data"]
    assert script_arguments(["/usr/lib/python3/site-packages/pytest/__main__.py", "--epochs=3"]) == ({}, [])


def test_model_type_and_input_type_as_in_recbole():
    from recforge import InputType, ModelType

    config = Config("ItemKNN", cmd_args=[])
    assert config["MODEL_TYPE"] is ModelType.TRADITIONAL and config["MODEL_INPUT_TYPE"] is InputType.POINTWISE
    assert "MODEL_TYPE" not in config.to_dict()  # derived, not saved


def test_custom_model_reads_free_keys_and_other_models_keys():
    from recforge import Float, GeneralRecommender, Key

    class FreeModel(GeneralRecommender):  # declares nothing: RecBole's behaviour
        pass

    class TypedModel(GeneralRecommender):
        hyper_parameters = (Key("dropout", Float(minimum=0.0, maximum=1.0), 0.1, "Dropout."),)

    free = Config(FreeModel, config_dict={"embedding_size": 16, "my_weight": 0.5}, cmd_args=["--layers=[8, 4]"])
    assert free["embedding_size"] == 16 and free["my_weight"] == 0.5 and free["layers"] == [8, 4]
    with pytest.raises(KeyError, match="'hidden' is not set"):
        free["hidden"]
    with pytest.raises(ConfigError, match="unknown config key 'learning_rat'"):
        Config(FreeModel, config_dict={"learning_rat": 0.1}, cmd_args=[])  # a free key, but surely a typo

    typed = Config(TypedModel, config_dict={"embedding_size": 32, "dropout": 0.2}, cmd_args=[])
    assert typed["embedding_size"] == 32 and typed["dropout"] == 0.2
    with pytest.raises(ConfigError, match="'embedding_size': 0 is not an integer >= 1"):
        Config(TypedModel, config_dict={"embedding_size": 0}, cmd_args=[])  # BPR's type checks it
    with pytest.raises(ConfigError, match="'dropout': 2.0 is not a number >= 0 and <= 1"):
        Config(TypedModel, config_dict={"dropout": 2}, cmd_args=[])
    with pytest.raises(ConfigError, match="unknown config key 'my_weight'"):
        Config(TypedModel, config_dict={"my_weight": 0.5}, cmd_args=[])
