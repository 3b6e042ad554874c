"""One contract test that every registered model runs, plus model-specific known answers."""

from typing import ClassVar

import numpy as np
import pytest
import torch

from conftest import tiny_config, write_atomic
from recforge import Config, create_dataset, data_preparation
from recforge.config.model_keys import model_declaration
from recforge.data.interaction import Interaction
from recforge.errors import ConfigError
from recforge.models import GeneralRecommender, building, model_names
from recforge.models.building import AllocationGuard, create_model
from recforge.models.general.itemknn import item_similarity
from recforge.registry import get_model_class, get_trainer
from recforge.utils import init_seed

FAST = {"learning_rate": 0.05, "epochs": 40, "train_batch_size": 16}
TRAINING = {
    "BPR": FAST,
    "LightGCN": FAST,
    "NGCF": {**FAST, "learning_rate": 0.01, "epochs": 100},
    # On 20 users the contrastive tasks (uniformity) would outweigh BPR at their default weights.
    "SGL": {**FAST, "ssl_weight": 0.005},
    "SimGCL": {**FAST, "lambda": 0.01},
    "NCL": {**FAST, "num_clusters": 4, "warm_up_step": 5},
    "CFKG": {"learning_rate": 0.02, "epochs": 8, "train_batch_size": 16},
    "KGAT": {"learning_rate": 0.02, "epochs": 3, "train_batch_size": 32},
    "KGCN": {"learning_rate": 0.05, "epochs": 15, "train_batch_size": 32},
    "KGNNLS": {"learning_rate": 0.05, "epochs": 15, "train_batch_size": 32},
    "KGIN": {"learning_rate": 0.05, "epochs": 8, "train_batch_size": 32},
    "KTUP": {"learning_rate": 0.02, "epochs": 15, "train_batch_size": 16},
    "MCCLK": {"learning_rate": 0.05, "epochs": 10, "train_batch_size": 32},
    "MKR": {"learning_rate": 0.01, "epochs": 20, "train_batch_size": 32},
    "RippleNet": {"learning_rate": 0.01, "epochs": 40, "train_batch_size": 32},
}
# Context-aware and tree models learn labels: here 1 for an interaction, 0 for a uniformly sampled item, ranked
# in full (their family's defaults are labelled evaluation with AUC).
RANKED_LABELS = {
    "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
    "eval_args": {"split": {"RS": [0.8, 0.0, 0.2]}, "order": "RO", "group_by": "user", "mode": "full"},
    "metrics": ["Recall"],
}
# Pointwise training memorises the sampled negatives (own-community items included) within 40 epochs at lr 0.05.
CONTEXT = {**RANKED_LABELS, "learning_rate": 0.01, "epochs": 20, "train_batch_size": 16}
TRAINING.update(
    {
        name: CONTEXT
        for name in (
            "LR",
            "FM",
            "DeepFM",
            "NFM",
            "WideDeep",
            "FNN",
            "FwFM",
            "PNN",
            "FFM",
            "AutoInt",
            "FiGNN",
            "DSSM",
            "EulerNet",
        )
    }
)
TRAINING.update({name: {**CONTEXT, "reg_weight": 0.01} for name in ("DCN", "DCNV2", "AFM")})
TRAINING["xDeepFM"] = {**CONTEXT, "epochs": 10}  # its CIN memorises the sampled negatives by epoch 20
# The teacher_training phase: its CrossNet (standard-normal cross weights, RecBole's) memorises them by epoch 10.
TRAINING["KD_DAGFM"] = {**CONTEXT, "epochs": 5}
TRAINING["XGBoost"] = {**RANKED_LABELS, "epochs": 1}
TRAINING["LightGBM"] = {**RANKED_LABELS, "epochs": 1, "lgb_params": {"objective": "binary", "min_data_in_leaf": 5}}


@pytest.fixture
def blocks_path(tmp_path):
    """Two communities: users b0-b9 use items x0-x9 only, users c0-c9 items y0-y9 only."""
    rng = np.random.default_rng(0)
    rows = []
    for group, items in (("b", "x"), ("c", "y")):
        for u in range(10):
            for i in sorted(rng.choice(10, size=6, replace=False)):
                rows.append([f"{group}{u}", f"{items}{i}"])
    write_atomic(tmp_path, "blocks", "inter", ["user_id:token", "item_id:token"], rows)
    # A knowledge graph with the same communities (read by knowledge-aware models only): every item is linked to an
    # entity with a genre of its community, a neighbour in it, and a tag shared across the communities.
    links, triples = [], []
    for items in ("x", "y"):
        for i in range(10):
            links.append([f"{items}{i}", f"e_{items}{i}"])
            triples.append([f"e_{items}{i}", "genre", f"genre_{items}"])
            triples.append([f"e_{items}{i}", "similar", f"e_{items}{(i + 1) % 10}"])
            triples.append([f"e_{items}{i}", "tag", f"tag_{i % 3}"])
    write_atomic(tmp_path, "blocks", "link", ["item_id:token", "entity_id:token"], links)
    write_atomic(tmp_path, "blocks", "kg", ["head_id:token", "relation_id:token", "tail_id:token"], triples)
    return tmp_path


def blocks_config(path, model, **extra):
    values = {
        "data_path": str(path),
        "checkpoint_dir": str(path / "saved"),
        "show_progress": False,
        "eval_args": {"split": {"RS": [0.8, 0.0, 0.2]}, "order": "RO"},
        "topk": [3],
        "valid_metric": "Recall@3",
        **TRAINING.get(model, {}),
        **extra,
    }
    return Config(model, "blocks", config_dict=values)


# Sequential models have their own contract (tests/test_models_sequential.py): their data is histories in time order.
NON_SEQUENTIAL = [name for name in model_names() if (model_declaration(name) or {}).get("type") != "sequential"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NON_SEQUENTIAL)
def test_model_contract(blocks_path, name, one_thread):
    check_contract(blocks_path, name)


def check_contract(blocks_path, name, **settings):
    """Train ``name`` on the blocks data; its full-ranking scores equal its pairwise ones, its state round-trips,
    and (personalised models) it ranks a user's own community above the other."""
    config = blocks_config(blocks_path, name, **settings)
    train, valid, test = data_preparation(config, create_dataset(config))
    init_seed(config["seed"])  # the model's initial weights, as RecBole's quick start
    model = get_model_class(name)(config, train.dataset)
    trainer = get_trainer(type(model))(config, model, run_dir=blocks_path / "run")
    trainer.fit(train, valid, verbose=False, saved=False)
    model.eval()  # as the trainer scores (dropout off)
    users = torch.arange(1, 21)
    scores = model.full_sort_predict(Interaction({"user_id": users}))
    assert scores.shape == (20, model.n_items)
    pairs = Interaction(
        {"user_id": users.repeat_interleave(model.n_items), "item_id": torch.arange(model.n_items).repeat(20)}
    )
    assert torch.allclose(model.predict(pairs).view(20, -1).double(), scores.double(), atol=1e-5)
    # The state dict round-trips into a fresh instance.
    fresh = get_model_class(name)(config, train.dataset)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    assert torch.allclose(fresh.full_sort_predict(Interaction({"user_id": users})).double(), scores.double())
    if name not in ("Pop", "LR"):  # personalised models separate the two communities (LR has no user x item term)
        ds = train.dataset
        community_of_user = np.array([""] + [t[0] for t in ds.field2id_token["user_id"][1:]])
        community_of_item = np.array([""] + [{"x": "b", "y": "c"}[t[0]] for t in ds.field2id_token["item_id"][1:]])
        own = torch.from_numpy(community_of_item[None, :] == community_of_user[1:, None])
        own[:, 0] = False
        seen = torch.from_numpy(train.dataset.inter_matrix("csr")[1:].toarray() > 0)
        candidate_own = scores[own & ~seen].mean()
        other = scores[~own].mean()
        assert candidate_own > other + 0.1 * scores.abs().mean(), name


def test_pop_counts_every_interaction(tmp_path):
    rows = [["u1", "a"], ["u2", "a"], ["u3", "a"], ["u1", "b"], ["u2", "b"], ["u1", "c"]]
    write_atomic(tmp_path, "p", "inter", ["user_id:token", "item_id:token"], rows)
    config = Config("Pop", "p", config_dict={"data_path": str(tmp_path)})
    ds = create_dataset(config)
    model = get_model_class("Pop")(config, ds)
    model.fit_statistics(ds)
    assert model.item_cnt.tolist() == [0, 3, 2, 1]
    assert (
        model.full_sort_predict(Interaction({"user_id": torch.tensor([1, 2])})).tolist() == [[0, 1, 2 / 3, 1 / 3]] * 2
    )


def cosine_reference(matrix: np.ndarray, k: int, shrink: float) -> np.ndarray:
    """Dense float64 W, column by column, ties broken towards lower ids (stable sort)."""
    norms = np.sqrt((matrix**2).sum(axis=0))
    n = matrix.shape[1]
    w = np.zeros((n, n))
    for j in range(n):
        sims = matrix.T @ matrix[:, j] / (norms * norms[j] + shrink + 1e-6)
        sims[j] = 0
        order = np.argsort(-sims, kind="stable")[:k]
        w[order, j] = sims[order]
    return w


@pytest.mark.parametrize(("k", "shrink"), [(2, 0.0), (3, 1.5), (50, 0.0)])
def test_item_similarity_matches_reference(k, shrink):
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    dense = (rng.random((30, 12)) < 0.3).astype(np.float64)
    dense[:, 5] = dense[:, 6]  # identical columns create exact ties
    got = item_similarity(sp.csr_matrix(dense), k, shrink).toarray()
    expected = cosine_reference(dense, k, shrink)
    assert np.allclose(got, expected, atol=1e-6)
    assert ((got != 0).sum(axis=0) <= k).all()


def test_bpr_with_several_negatives(tiny_path):
    from conftest import tiny_config

    config = tiny_config(tiny_path, "BPR", train_neg_sample_args={"sample_num": 4})
    train, _, _ = data_preparation(config, create_dataset(config))
    model = get_model_class("BPR")(config, train.dataset)
    batch = next(iter(train))
    loss = model.calculate_loss(batch)
    user_e = model.user_embedding(batch["user_id"])
    pos = (user_e * model.item_embedding(batch["item_id"])).sum(-1, keepdim=True)
    neg = (user_e.unsqueeze(1) * model.item_embedding(batch["neg_item_id"])).sum(-1)
    assert loss.item() == pytest.approx((-torch.log(torch.sigmoid(pos - neg) + 1e-10)).mean().item(), rel=1e-6)


def test_user_knn_matches_reference():
    import scipy.sparse as sp

    from recforge import Config

    rng = np.random.default_rng(2)
    dense = (rng.random((15, 9)) < 0.35).astype(np.float64)
    w_users = cosine_reference(dense.T, 4, 0.0).T  # row u: u's 4 nearest users
    expected = w_users @ dense

    class Data:
        user_num, item_num = dense.shape

        def inter_matrix(self, form):
            return sp.csr_matrix(dense)

    config = Config("ItemKNN", config_dict={"k": 4, "knn_method": "user"})
    model = get_model_class("ItemKNN")(config, Data())
    model.fit_statistics(Data())
    got = model.full_sort_predict(Interaction({"user_id": torch.arange(15)})).numpy()
    assert np.allclose(got, expected, atol=1e-5)


# -- building: create_model --------------------------------------------------------------------------------------
def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of ``model``, sparse ones as their index and value tensors."""
    tensors = {}
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.layout == torch.sparse_csr:
            parts = {"crow": tensor.crow_indices(), "col": tensor.col_indices(), "values": tensor.values()}
            tensors.update({f"{name}.{part}": value for part, value in parts.items()})
        else:
            tensors[name] = tensor.detach()
    return tensors


@pytest.mark.parametrize("name", NON_SEQUENTIAL)
def test_create_model_builds_what_the_constructor_builds(blocks_path, name, one_thread):
    config = blocks_config(blocks_path, name)
    check_guarded_build(config, name)


def check_guarded_build(config, name: str) -> None:
    """create_model's memory guard changes nothing: the same tensors bit for bit and the same random state after
    the build as a plain ``Model(config, train_data)`` (a loader as the data set: its data set is what is read)."""
    train, _, _ = data_preparation(config, create_dataset(config))
    built = []
    for build in (
        lambda: create_model(get_model_class(name), config, train.dataset),
        lambda: config.model_class(config, train),
    ):
        init_seed(config["seed"])
        built.append((model_tensors(build()), torch.get_rng_state()))
    (guarded, guarded_rng), (plain, plain_rng) = built
    assert guarded.keys() == plain.keys() and torch.equal(guarded_rng, plain_rng)
    for key, tensor in guarded.items():
        assert tensor.dtype == plain[key].dtype and torch.equal(tensor, plain[key]), key


def test_allocation_guard_moves_what_does_not_fit_to_the_meta_device():
    generator = torch.Generator().manual_seed(0)
    with AllocationGuard(budget=1000) as guard:
        small = torch.randn(10, 10, generator=generator)  # 400 bytes
        large = torch.empty(200)  # 800 more: past the budget
        later = torch.zeros(1)
        derived = torch.arange(5)  # not a sized factory: never counted
    assert small.device.type == "cpu" and large.is_meta and later.is_meta and derived.device.type == "cpu"
    assert guard.exceeded and guard.requested == 1200


class _ReadsItsWeights(GeneralRecommender):
    """Reads its weights while it is built: on the meta device that fails."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.embedding = torch.nn.Embedding(self.n_items, 1000)
        self.register_buffer("norms", torch.from_numpy(self.embedding.weight.detach().norm(dim=1).numpy()))


class _BufferHeavy(GeneralRecommender):
    """A small weight and a large buffer made by a sized factory; records where its buffer was built."""

    devices: ClassVar[list[str]] = []

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.embedding = torch.nn.Embedding(self.n_items, 10)
        self.register_buffer("table", torch.zeros(self.n_items, 1000))
        type(self).devices.append(self.table.device.type)


def test_a_weight_that_could_not_be_trained_is_never_filled(tiny_path, monkeypatch):
    """The guard's budget is the free memory / 4 for a trainable model: a weight that fits once but not four times
    is made on the meta device (what is filled stays within a quarter of the memory); a build whose excess is buffers is built again for real, the same as without."""
    config = tiny_config(tiny_path, "BPR", embedding_size=1000)
    train, _, _ = data_preparation(config, create_dataset(config))
    params = (train.dataset.user_num + train.dataset.item_num) * 1000 * 4
    monkeypatch.setattr(building, "available_memory", lambda device: 2 * params)
    filled = []
    monkeypatch.setattr(torch.nn.init, "normal_", lambda tensor, *a, **k: filled.append(tensor))
    with pytest.raises(ConfigError, match="BPR would need"):
        create_model(get_model_class("BPR"), config, train.dataset)
    assert [w.is_meta for w in filled] == [False, True]  # the users' weights fit in a quarter, the items' do not
    assert filled[0].numel() * 4 <= 2 * params / 4
    monkeypatch.undo()
    table = train.dataset.item_num * 1000 * 4
    monkeypatch.setattr(building, "available_memory", lambda device: 2 * table)  # the buffer: > budget / 4, fits
    _BufferHeavy.devices.clear()
    init_seed(0)
    guarded = create_model(_BufferHeavy, config, train.dataset)
    init_seed(0)
    plain = _BufferHeavy(config, train.dataset)
    assert _BufferHeavy.devices == ["meta", "cpu", "cpu"] and not guarded.table.is_meta
    assert torch.equal(guarded.embedding.weight, plain.embedding.weight)


def test_create_model_refuses_what_does_not_fit(tiny_path, monkeypatch):
    config = tiny_config(tiny_path, "BPR", embedding_size=1000)
    train, _, _ = data_preparation(config, create_dataset(config))
    params = (train.dataset.user_num + train.dataset.item_num) * 1000 * 4
    gib = 2**30
    for budget, needed in ((2 * params, 4 * params), (params // 10, 4 * params)):  # fits once, not 4 x; never
        monkeypatch.setattr(building, "available_memory", lambda device, budget=budget: budget)
        with pytest.raises(ConfigError) as error:
            create_model(get_model_class("BPR"), config, train.dataset)
        assert str(error.value) == (
            f"BPR would need {needed / gib:,.1f} GiB ({params / gib:,.1f} GiB of parameters, x4 to train) on cpu, "
            f"which has {budget / gib:,.1f} GiB free; lower the model's sizes (embedding_size: 1000)"
        )
    with pytest.raises(ConfigError, match=r"_ReadsItsWeights would need more than [\d.]+ GiB \(what its build asked"):
        create_model(_ReadsItsWeights, config, train.dataset)  # the rest of the build failed on the meta device
    monkeypatch.setattr(building, "available_memory", lambda device: 4 * params)
    assert create_model(_ReadsItsWeights, config, train.dataset).norms.shape == (train.dataset.item_num,)
