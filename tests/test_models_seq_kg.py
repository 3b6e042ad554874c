"""KSR and GRU4RecKG: the knowledge-aware sequential data set (linked items, merged ids, preloaded vectors), the
models' computations against RecBole's formulation written out, the TransE files of ``recforge kg-embeddings``,
and the errors of a missing or mismatched vector file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from recforge.data.files.atomic import read_atomic
from recforge.data.kg_seq_dataset import KGSeqDataset
from recforge.errors import ConfigError, DataError
from recforge.models.knowledge.kg_embeddings import train_transe, write_kg_embeddings
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import N_ITEMS, cycle_config, cycle_loaders, first_batch, write_cycle


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle-kg"))


def _vectors(path) -> dict[str, np.ndarray]:
    table = read_atomic(path)
    ids, vectors = table.columns.values()
    return {
        token: vectors.values[vectors.offsets[i] : vectors.offsets[i + 1]]
        for i, token in enumerate(ids.vocabulary[ids.codes])
    }


def test_the_dataset_preloads_each_items_entity_vector_at_the_items_id(cycle_root):
    config = cycle_config(cycle_root, "KSR")
    assert config["additional_feat_suffix"] == ["ent", "rel"]
    assert config["preload_weight"] == {"ent_id": "ent_emb", "rel_id": "rel_emb"}
    train, _, _ = cycle_loaders(config)
    dataset = train.dataset
    assert isinstance(dataset, KGSeqDataset)
    entity_file = _vectors(cycle_root / "cycle" / "cycle.ent")
    entities = dataset.get_preload_weight("ent_id")
    assert entities.shape == (dataset.num("entity_id"), 64)
    assert not entities[0].any()
    for item in range(1, dataset.item_num):  # entity i is item i's entity (the merged id space)
        token = dataset.id2token("item_id", item)
        assert dataset.id2token("entity_id", item) == "e" + token[1:]
        np.testing.assert_allclose(entities[item], entity_file["e" + token[1:]], rtol=0, atol=0)
    relation_file = _vectors(cycle_root / "cycle" / "cycle.rel")
    relations = dataset.get_preload_weight("rel_id")
    for relation in range(1, 4):
        np.testing.assert_allclose(relations[relation], relation_file[dataset.id2token("relation_id", relation)])
    assert isinstance(dataset.ent_feat["ent_emb"].values, np.ndarray)  # the file's table, as RecBole's ent_feat


def _ksr_as_recbole(model, item_seq, item_seq_len):
    """RecBole 1.2.1's KSR.forward (with relation_Matrix in float32): the memory written over all L positions."""
    output, _ = model.gru_layers(model.item_embedding(item_seq))
    hidden = output[torch.arange(len(item_seq)), item_seq_len - 1]
    relations = model.relation_matrix
    batch, length = item_seq.shape
    memory = torch.zeros(batch, model.n_relations, relations.shape[1])
    last = torch.zeros_like(memory)
    for t in range(length):
        head = model.entity_embedding(item_seq[:, t]).unsqueeze(1).repeat(1, model.n_relations, 1)
        tails = head + relations.unsqueeze(0).repeat(batch, 1, 1)
        gate = torch.sigmoid(torch.sum(memory * tails, dim=-1).float()).unsqueeze(-1)
        memory = (1 - gate) * memory + gate * tails
        mask = item_seq_len - 1 == t
        last[mask] = memory[mask].float()
    attention = torch.softmax(model.gamma * torch.matmul(model.dense(hidden), relations.T), dim=-1)
    read = torch.sum(last * attention.unsqueeze(-1), dim=1)
    return model.dense_layer_u(torch.cat([hidden, read], -1))


def test_ksr_is_recboles_key_value_memory(cycle_root):
    config = cycle_config(cycle_root, "KSR", dropout_prob=0.0)
    train, _, _ = cycle_loaders(config)
    init_seed(3)
    model = get_model_class("KSR")(config, train.dataset).eval()
    assert model.n_relations == 4  # [PAD] and next, parity, mod3: the padding relation is a (zero-key) slot
    batch = first_batch(train)
    seq, lengths = batch["item_id_list"], batch["item_length"]
    with torch.no_grad():
        expected = _ksr_as_recbole(model, seq, lengths)
        torch.testing.assert_close(model(seq, lengths), expected, rtol=1e-5, atol=1e-6)
        items = model.dense_layer_i(torch.cat([model.item_embedding.weight, model.entity_embedding.weight], -1))
        torch.testing.assert_close(model.full_sort_predict(batch), expected @ items.T, rtol=1e-5, atol=1e-5)
    assert model.entity_embedding.weight.requires_grad  # freeze_kg False: the entity vectors train
    assert model.relation_matrix.dtype == torch.float32


def test_gru4reckg_concatenates_item_and_entity_grus(cycle_root):
    config = cycle_config(cycle_root, "GRU4RecKG", dropout_prob=0.0)
    train, _, _ = cycle_loaders(config)
    init_seed(3)
    model = get_model_class("GRU4RecKG")(config, train.dataset).eval()
    entities = torch.from_numpy(train.dataset.get_preload_weight("ent_id")[: model.n_items]).float()
    torch.testing.assert_close(model.entity_embedding.weight, entities)
    assert not model.entity_embedding.weight.requires_grad  # freeze_kg True
    batch = first_batch(train)
    seq, lengths = batch["item_id_list"], batch["item_length"]
    with torch.no_grad():
        item_out, _ = model.item_gru_layers(model.item_embedding(seq))
        entity_out, _ = model.entity_gru_layers(torch.nn.functional.embedding(seq, entities))
        rows = torch.arange(len(seq))
        expected = model.dense_layer(torch.cat([item_out, entity_out], -1))[rows, lengths - 1]
        torch.testing.assert_close(model(seq, lengths), expected)
        torch.testing.assert_close(model.full_sort_predict(batch), expected @ model.item_embedding.weight.T)


def test_transe_puts_each_tail_nearest_its_head_plus_relation(cycle_root):
    kg = read_atomic(cycle_root / "cycle" / "cycle.kg")
    head, relation, tail = kg.columns.values()
    tokens = np.union1d(head.vocabulary, tail.vocabulary)
    heads = np.searchsorted(tokens, head.vocabulary[head.codes])
    tails = np.searchsorted(tokens, tail.vocabulary[tail.codes])
    vectors, losses = train_transe(heads, relation.codes, tails, len(tokens), 3, size=16, epochs=200, seed=1)
    assert losses[-1] < losses[0] / 5
    guesses = vectors.entities[heads] + vectors.relations[relation.codes]
    distances = np.abs(guesses[:, None, :] - vectors.entities[None]).sum(-1)
    true_rank = (distances < distances[np.arange(len(heads)), tails][:, None]).sum(1)
    attribute = relation.vocabulary[relation.codes] != "next"
    assert (true_rank <= 1).all()  # random vectors: a mean rank of 8 among 17 entities
    assert (true_rank[attribute] == 0).mean() >= 0.9
    # "next": twelve translations by one vector around the cycle add up to zero, so the vector is short and the
    # head itself may come before e(k+1), never anything else (rank <= 1 above)


def test_kg_embeddings_files_link_the_data_set_and_refuse_to_overwrite(cycle_root, tmp_path):
    folder = write_kg_embeddings(cycle_root / "cycle", "cycle", tmp_path, size=8, epochs=1)
    assert folder == tmp_path / "cycle"
    assert (folder / "cycle.inter").is_symlink() and (folder / "cycle.kg").is_symlink()
    entities = read_atomic(folder / "cycle.ent")
    assert entities.types == {"ent_id": "token", "ent_emb": "float_seq"}
    assert len(_vectors(folder / "cycle.ent")) == N_ITEMS + 5  # e0..e11, even, odd, m0..m2
    assert {len(v) for v in _vectors(folder / "cycle.rel").values()} == {8}
    with pytest.raises(ConfigError, match=r"cycle\.ent.* exist\(s\); pass --overwrite to replace them"):
        write_kg_embeddings(cycle_root / "cycle", "cycle", tmp_path, size=8, epochs=1)
    assert not list(folder.glob(".*tmp"))


def test_vectors_of_another_size_name_the_key(cycle_root):
    config = cycle_config(cycle_root, "KSR", kg_embedding_size=32)
    train, _, _ = cycle_loaders(config)
    message = (
        r"cycle\.ent: the ent_emb vectors have 64 values, but config key 'kg_embedding_size' is 32; set "
        r"kg_embedding_size: 64, or write vectors of 32 values \(recforge kg-embeddings --embedding-size 32\)"
    )
    with pytest.raises(ConfigError, match=message):
        get_model_class("KSR")(config, train.dataset)


def test_a_missing_vector_file_is_one_line(cycle_root, tmp_path):
    shutil.copytree(cycle_root / "cycle", tmp_path / "cycle")
    (tmp_path / "cycle" / "cycle.rel").unlink()
    config = cycle_config(tmp_path, "KSR")
    with pytest.raises(
        DataError, match=r"cycle\.rel: file not found \(config key 'additional_feat_suffix' names 'rel'\)"
    ):
        cycle_loaders(config)
    config = cycle_config(
        tmp_path, "KSR", additional_feat_suffix=["ent"], preload_weight={"ent_id": "ent_emb"}, alias_of_relation_id=None
    )
    train, _, _ = cycle_loaders(config)
    with pytest.raises(ConfigError, match=r"config key 'preload_weight' has no 'rel_id'"):
        get_model_class("KSR")(config, train.dataset)


def test_ksr_refuses_reversed_relations(cycle_root):
    config = cycle_config(cycle_root, "KSR", kg_reverse_r=True)
    train, _, _ = cycle_loaders(config)
    with pytest.raises(ConfigError, match="config key 'kg_reverse_r': KSR keeps one memory slot per relation"):
        get_model_class("KSR")(config, train.dataset)
