"""ScoreTables: tables computed once per evaluation, in evaluation mode, dropped on train / load / forget."""

import torch
from torch import nn

from recforge.data.interaction import Interaction
from recforge.models.tables import ScoreTables


class Tables(ScoreTables, nn.Module):
    USER_ID, ITEM_ID = "user_id", "item_id"

    def __init__(self):
        super().__init__()
        self.users = nn.Parameter(torch.arange(6.0).view(3, 2))
        self.items = nn.Parameter(torch.arange(8.0).view(4, 2))
        self.dropout = nn.Dropout(0.5)
        self.modes = []

    def compute_tables(self):
        self.modes.append(self.training)
        return self.dropout(self.users), self.dropout(self.items)


def test_tables_are_computed_once_per_evaluation_in_evaluation_mode():
    model = Tables().eval()
    users = Interaction({"user_id": torch.tensor([0, 2])})
    expected = model.users[[0, 2]] @ model.items.T
    assert torch.equal(model.full_sort_predict(users), expected)
    pairs = Interaction({"user_id": torch.tensor([0, 2]), "item_id": torch.tensor([3, 1])})
    assert torch.equal(model.predict(pairs), expected[[0, 1], [3, 1]])
    assert model.modes == [False]  # one computation for both calls
    model.train()
    model.eval()
    model.full_sort_predict(users)
    model.forget_tables()
    model.full_sort_predict(users)
    model.load_state_dict(model.state_dict())
    model.full_sort_predict(users)
    assert model.modes == [False] * 4


def test_scoring_while_training_uses_evaluation_mode_and_keeps_training():
    model = Tables().train()
    users = Interaction({"user_id": torch.tensor([1])})
    assert torch.equal(model.full_sort_predict(users), model.users[[1]] @ model.items.T)  # no dropout
    assert model.training and model.modes == [False]
