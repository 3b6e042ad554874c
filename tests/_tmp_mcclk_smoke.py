import time
from test_models import blocks_path, check_contract  # noqa: F401

def test_contract(blocks_path):
    t = time.time()
    check_contract(blocks_path, "MCCLK", learning_rate=0.05, epochs=40, train_batch_size=16)
    print("time", time.time() - t)
