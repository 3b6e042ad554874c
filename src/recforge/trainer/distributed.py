"""Distributed training with torch.distributed, in one visible place.

Processes. ``recforge run --nproc N`` starts N processes (``recforge.trainer.launch``); ``torchrun
--nproc_per_node N -m recforge run ...`` works as well, across machines too. Each process joins the group from
the environment the launcher sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``):
gloo on the CPU, nccl on CUDA (one GPU per process, by local rank). RecBole's keys map onto it: ``nproc``
processes on this machine, ``world_size`` in all, ``offset`` the rank of this machine's first process (machine
``offset // nproc``), ``ip`` / ``port`` the first machine's address.

What each rank does (see ``Trainer``): the model is wrapped in ``DistributedDataParallel``; every rank draws the
same seeded permutation and negatives of an epoch and trains on its own slice of each global batch of
``train_batch_size`` rows, so gradients are averaged over the global batch as DDP does; evaluation shards the
users (or labelled rows) in contiguous blocks without padding, and the evaluators' per-user values are gathered
in rank order, so every metric equals the single-process one bit for bit; only rank 0 writes (run folder,
checkpoints, logs).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger("recforge")


def is_distributed() -> bool:
    """Whether this process is one rank of a group of several."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def started_as_rank() -> bool:
    """Whether a launcher started this process as one rank of several (its environment says so)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> torch.device:
    """Join the process group when this process was started as a rank; returns the device to use (on CUDA,
    this rank's GPU)."""
    if not started_as_rank() or not dist.is_available():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if rank() != 0:
        logging.getLogger().setLevel(logging.WARNING)  # one log: rank 0's
    return device


def gather_objects(obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order (a list of one without a group)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def average_losses(totals: list[Any], device: torch.device) -> list[Any]:
    """The mean over the ranks of each loss total (a float, a tuple of floats, or None where no batch ran; the
    same structure on every rank, as the ranks train the same batches). With each rank's batch losses weighted by
    its share of the batch, the mean is the loss one process reports."""
    flat = [v for total in totals if total is not None for v in (total if isinstance(total, tuple) else (total,))]
    if not flat:
        return totals
    summed = torch.tensor(flat, dtype=torch.float64, device=device)  # nccl reduces CUDA tensors only
    dist.all_reduce(summed)
    values = iter((summed / world_size()).tolist())
    return [
        None if total is None else tuple(next(values) for _ in total) if isinstance(total, tuple) else next(values)
        for total in totals
    ]


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.parallel.DistributedDataParallel | None:
    """``model`` in DistributedDataParallel, or None when every trainable parameter is a sparse embedding.

    Buffers are not synchronised (they are built from the data, the same on every rank, and some are large
    sparse graphs). Sparse embedding weights are left out of DDP: gloo's sparse all-reduce corrupted memory at
    25M interactions and nccl has none; ``average_sparse_gradients`` averages them instead."""
    import inspect

    ddp = torch.nn.parallel.DistributedDataParallel
    sparse = [name for name, _ in sparse_parameters(model)]
    # Sparse buffers (a graph's normalised adjacency) cannot be broadcast; DDP copies buffers at construction
    # even with forward_sync_buffers False. They are built from the data, the same on every rank.
    sparse_buffers = [name for name, buffer in model.named_buffers() if buffer.layout != torch.strided]
    if sparse or sparse_buffers:
        ddp._set_params_and_buffers_to_ignore_for_model(model, sparse + sparse_buffers)
    if not any(p.requires_grad for name, p in model.named_parameters() if name not in sparse):
        return None
    no_buffer_sync = (
        {"forward_sync_buffers": False}
        if "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters
        else {"broadcast_buffers": False}
    )
    return ddp(model, device_ids=[device.index] if device.type == "cuda" else None, **no_buffer_sync)


def sparse_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """``(name, weight)`` of the trainable weights of sparse embeddings (``nn.Embedding(sparse=True)``)."""
    weights = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding) and m.sparse}
    return [(name, p) for name, p in model.named_parameters() if id(p) in weights and p.requires_grad]


def average_sparse_gradients(params: list[torch.nn.Parameter]) -> None:
    """Replace each parameter's sparse gradient by its mean over the ranks, as DDP does for dense ones: every
    rank's (rows, values / world) are gathered, all ranks get the same concatenation (rows may repeat: the
    optimizer coalesces). A weight whose gradient is dense on some rank is all-reduced densely. Every rank must
    call this with the same parameters in the same order."""
    world = world_size()
    for param in params:
        width = param.shape[1:]
        dense = torch.tensor([param.grad is not None and not param.grad.is_sparse], device=param.device)
        dist.all_reduce(dense, op=dist.ReduceOp.MAX)  # a weight also read whole (a graph model) has dense gradients
        if bool(dense):
            grad = torch.zeros_like(param) if param.grad is None else param.grad.to_dense()
            dist.all_reduce(grad)
            param.grad = grad.div_(world)
            continue
        if param.grad is None:
            rows = torch.zeros(0, dtype=torch.int64, device=param.device)
            values = torch.zeros((0, *width), dtype=param.dtype, device=param.device)
        else:
            grad = param.grad.coalesce()
            rows, values = grad.indices()[0], grad.values() / world
        counts = [torch.zeros(1, dtype=torch.int64, device=param.device) for _ in range(world)]
        dist.all_gather(counts, torch.tensor([len(rows)], device=param.device))
        counts = [int(c) for c in counts]
        most = max(counts)
        padded_rows = torch.zeros(most, dtype=torch.int64, device=param.device)
        padded_rows[: len(rows)] = rows
        padded_values = torch.zeros((most, *width), dtype=values.dtype, device=param.device)
        padded_values[: len(rows)] = values
        all_rows = [torch.empty_like(padded_rows) for _ in range(world)]
        all_values = [torch.empty_like(padded_values) for _ in range(world)]
        dist.all_gather(all_rows, padded_rows)
        dist.all_gather(all_values, padded_values)
        rows = torch.cat([r[:n] for r, n in zip(all_rows, counts, strict=True)])
        values = torch.cat([v[:n] for v, n in zip(all_values, counts, strict=True)])
        param.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), values, param.shape, check_invariants=False)


def peer_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective failing because another rank stopped (that rank reports its own error)."""
    if not is_distributed():
        return False
    text = str(exc)
    # gloo raises plain RuntimeErrors from its transport ("Connection closed by peer", "...reset by peer").
    return isinstance(exc, dist.DistError) or (isinstance(exc, RuntimeError) and "by peer" in text)


def broadcast_model(model: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers into every rank's ``model`` (in place)."""
    for tensor in model.state_dict().values():
        if tensor.layout == torch.strided:
            dist.broadcast(tensor, src=0)


def shard_evaluation(model: torch.nn.Module, eval_data: Any, show_progress: bool) -> tuple[Any, bool]:
    """With several processes: every rank takes rank 0's weights and scores its block of ``eval_data``; returns
    the evaluators' merge (None in one process) and whether this rank shows progress."""
    if not is_distributed():
        return None, show_progress
    broadcast_model(model)  # every rank scores rank 0's weights (its best model)
    merge = None
    if hasattr(eval_data, "shard"):
        eval_data.shard(rank(), world_size())
        merge = merge_evaluators
    return merge, show_progress and is_main_process()


def merge_evaluators(evaluator) -> None:
    """Give every rank's ``evaluator`` the accumulated values of all ranks, in rank order (users or rows of the
    blocks in order: the order of one process)."""
    evaluator.load_states(gather_objects(evaluator.state()))


def leave() -> None:
    """Leave the process group once every rank is done (exiting with the group alive can abort the process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
