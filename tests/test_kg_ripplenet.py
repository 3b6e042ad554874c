from test_models import blocks_path, check_contract  # noqa: F401


def test_contract(blocks_path):
    check_contract(blocks_path, "RippleNet", learning_rate=0.01, epochs=30, train_batch_size=32)
