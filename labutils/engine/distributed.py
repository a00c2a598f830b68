"""Data-parallel training on PyTorch's own engine: ``torchrun`` + ``torch.distributed`` + DDP.

``torchrun --standalone --nproc_per_node=N -m labutils train ...`` starts N processes (ranks)
and tells each its place through the environment (RANK, WORLD_SIZE, LOCAL_RANK).
``process_group`` joins them (NCCL on GPUs, gloo on CPUs) and always leaves again; without
torchrun's environment it is a no-op and training runs in one process as before. Every helper
below answers for one process too (rank 0 of 1), so the training loop needs no second version.

Each rank holds the whole split and takes its share of every global batch (``--batch-size``
stays the global batch); ``DistributedDataParallel`` averages the gradients over the ranks.
SyncBatchNorm needs GPUs (DDP refuses it on CPU modules): under gloo each rank keeps its own
batch statistics, and the running statistics are averaged before each evaluation.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from labutils import runtime
from labutils.engine import interrupts

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


# --------------------------------------------------------------------------- set-up


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher) set RANK, WORLD_SIZE and LOCAL_RANK."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


@contextlib.contextmanager
def process_group(requested_device: str | torch.device | None = "auto"):
    """Join torchrun's process group for the block and yield this rank's device.

    NCCL when training on CUDA (one GPU per rank: ``cuda:LOCAL_RANK``), else gloo. The group is
    destroyed on the way out, also after an exception or Ctrl-C. Without torchrun's
    environment: no group, just ``runtime.select_device(requested_device)``.
    """
    device = runtime.select_device(requested_device)
    if not launched_by_torchrun():
        yield device
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield device
    finally:
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True inside a process group (under torchrun), False in an ordinary single process."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank: 0 in a single process."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """How many processes train together: 1 in a single process."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0, the one process that prints and writes files."""
    return rank() == 0


def backend() -> str | None:
    """'nccl' or 'gloo' inside a process group, else None."""
    return str(dist.get_backend()) if is_distributed() else None


def print_main(text: str) -> None:
    """Print on rank 0 only, so N processes print each line once."""
    if is_main():
        print(text, flush=True)


# --------------------------------------------------------------------------- model and data


def syncs_batch_norm() -> bool:
    """True when batch norm can use the whole global batch: SyncBatchNorm runs on NCCL only."""
    return backend() == "nccl"


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules())


def describe_batch_norm(model: nn.Module) -> str | None:
    """How batch norm sees the data: None without batch norm or in a single process."""
    if not is_distributed() or not has_batch_norm(model):
        return None
    return "synchronized" if syncs_batch_norm() else "per-rank"


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel (batch norm synchronised on NCCL); itself if alone.

    ``model`` must already be on ``device``. Parameters and buffers are broadcast from rank 0,
    so every rank starts from the same weights.
    """
    if not is_distributed():
        return model
    if syncs_batch_norm():
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [device.index] if device.type == "cuda" else None
    # Buffers are synced at the start only: per-rank batch norm keeps its own running
    # statistics until average_buffers joins them.
    return nn.parallel.DistributedDataParallel(
        model, device_ids=device_ids, forward_sync_buffers=False
    )


def shard_loaders(**loaders) -> None:
    """Give this rank its share of every batch of each loader (TensorLoaders), by name."""
    if not is_distributed():
        return
    for name, loader in loaders.items():
        if not hasattr(loader, "set_shard"):
            raise ValueError(
                f"{name} is a {type(loader).__name__}, which cannot be shared between "
                f"{world_size()} processes: pass a TensorLoader (loaders.make_loaders)."
            )
        loader.set_shard(rank(), world_size())


def join_batch_norm_statistics(model: nn.Module) -> None:
    """Average per-rank batch norm's running statistics, so that every rank holds one model."""
    if describe_batch_norm(model) == "per-rank":
        average_buffers(model)


def average_buffers(model: nn.Module) -> None:
    """Average floating-point buffers (batch norm's running statistics) over the ranks."""
    if not is_distributed():
        return
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer /= world_size()


def describe_processes(model: nn.Module) -> dict:
    """What a run's checkpoint and run.json record about the processes it trained with."""
    batch_norm = describe_batch_norm(model)
    words = None
    if is_distributed():
        words = f"data parallel: {world_size()} processes ({backend()}), global batch shared"
        if batch_norm == "per-rank":
            words += (
                "; batch norm per process (SyncBatchNorm needs NCCL on GPUs), running "
                "statistics averaged before each evaluation"
            )
        elif batch_norm == "synchronized":
            words += "; SyncBatchNorm over the global batch"
    return {
        "world_size": world_size(),
        "backend": backend(),
        "batch_norm": batch_norm,
        "distributed": words,
    }


# --------------------------------------------------------------------------- collectives


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over every rank (all ranks get the sum); unchanged in one process."""
    if not is_distributed():
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values


@dataclass
class BatchTotals:
    """One global batch, summed over the ranks: its loss, its correct predictions, its images."""

    loss_sum: float
    correct: int
    images: int
    images_per_rank: float  # what each rank divides its loss sum by: DDP then averages the ranks


def sum_batch(loss_sum: torch.Tensor, correct: torch.Tensor, images: int) -> BatchTotals:
    """The global batch's totals, in one sync and one sum over the ranks.

    The same sum carries Ctrl-C: when any rank has seen one (``interrupts.received``), every
    rank raises KeyboardInterrupt here, before the step, so that all of them stop together.
    """
    flags = torch.tensor([float(images), float(interrupts.received())])
    values = torch.cat(
        [torch.stack([loss_sum.detach(), correct.float()]), flags.to(loss_sum.device)]
    )
    loss_total, correct_total, image_total, interrupted = sum_over_ranks(values).tolist()
    if interrupted:
        raise KeyboardInterrupt  # Ctrl-C on some rank: every rank stops before this step
    return BatchTotals(loss_total, int(correct_total), int(image_total), image_total / world_size())


@contextlib.contextmanager
def own_random_stream(device: torch.device):
    """Under torchrun, let each rank draw from a random stream of its own for the block.

    Dropout then draws other masks on each rank, as one process does for the halves of its
    batch. The rank's stream is seeded from one draw of the shared stream, which therefore moves
    alike on every rank: the random state rank 0 saves resumes every rank exactly.
    """
    if not is_distributed():
        yield
        return
    seed = int(torch.randint(2**62, ()).item())
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed + rank())
        yield
