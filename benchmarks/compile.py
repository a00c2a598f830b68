"""torch.compile against eager on this machine: compile seconds, step time, GFLOP/s, break-even.

For each network (the CNN and ResNet9 at the ``cpu`` profile's batch sizes, the speed track's
``cpu``-recipe net at its batch of 2000), in one process and in the precision the lab picks:

1. eager: the median of ``--steps`` training steps (forward, cross-entropy, backward, Adam
   step; the model and its optimizer as the lab trains them), after one warm-up step;
2. compile: ``torch.compile(model)`` (inductor); the first compiled step, minus an eager
   step, is the compile time;
3. compiled: the median of ``--steps`` steps of the compiled model.

The arithmetic of one step is counted with ``torch.utils.flop_counter`` (forward and
backward); GFLOP/s is that over the step time, set against this machine's own matmul GFLOP/s
in the same precision (4096 x 4096, the limit for these arithmetic-bound nets). The last
columns say how many steps repay the compile time and how many a run of the profile takes:
compiling pays when a run is longer than its break-even.

    python benchmarks/compile.py --markdown
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from labutils import models, runtime
from labutils.course import profiles, runner
from labutils.speedrun import network, optimizers, recipes

NETWORKS = ("cnn", "resnet9", "speednet")
TRAIN_IMAGES = 50_000  # the official training split: run lengths in steps are counted on it
MATMUL_SIZE = 4096


def build(name: str, device: torch.device, batch_size: int | None):
    """The network, its optimizer, its batch size and its run length in steps (cpu profile)."""
    if name == "speednet":
        recipe = recipes.RECIPES["cpu"]
        batch_size = batch_size or recipe.batch_size
        model = network.build_speed_net(device, recipe)
        steps = round(recipe.epochs * TRAIN_IMAGES / batch_size)
        optimizer, _ = optimizers.make_optimizer(recipe, model, batch_size, steps, 10)
        return model, optimizer, batch_size, steps
    settings = profiles.training_settings("cpu", name)
    batch_size = batch_size or settings["batch_size"]
    model = models.build_model(name).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return model, optimizer, batch_size, settings["epochs"] * (TRAIN_IMAGES // batch_size)


def random_batch(batch_size: int, device: torch.device, channels_last: bool):
    generator = torch.Generator(device=device).manual_seed(0)
    images = torch.randn(batch_size, 3, 32, 32, generator=generator, device=device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (batch_size,), generator=generator, device=device)
    return images, labels


def step(network, optimizer, images, labels, dtype) -> None:
    with runtime.autocast(images.device, dtype):
        logits = network(images)
    loss = F.cross_entropy(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def timed(function, device) -> float:
    runtime.synchronize(device)
    start = time.perf_counter()
    function()
    runtime.synchronize(device)
    return time.perf_counter() - start


def step_flops(model, optimizer, images, labels, dtype) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        step(model, optimizer, images, labels, dtype)
    return float(counter.get_total_flops())


def matmul_gflops(device: torch.device, dtype: torch.dtype | None, repeats: int = 5) -> float:
    """This machine's matrix-product throughput in the lab's precision: its practical peak."""
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device)
    if dtype is not None:
        a, b = a.to(dtype), b.to(dtype)
    a @ b  # warm-up
    seconds = statistics.median(timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * MATMUL_SIZE**3 / seconds / 1e9


def measure(name: str, device, dtype, steps: int, batch_size: int | None) -> dict:
    model, optimizer, batch_size, run_steps = build(name, device, batch_size)
    channels_last = runtime.use_channels_last(model, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    images, labels = random_batch(batch_size, device, channels_last)
    flops = step_flops(model, optimizer, images, labels, dtype)
    step(model, optimizer, images, labels, dtype)  # warm-up
    eager = statistics.median(
        timed(lambda: step(model, optimizer, images, labels, dtype), device) for _ in range(steps)
    )
    print(f"  {name}: eager {eager:.3f} s/step; compiling ...", flush=True)
    compiled = torch.compile(model)
    first = timed(lambda: step(compiled, optimizer, images, labels, dtype), device)
    compile_seconds = max(0.0, first - eager)
    fast = statistics.median(
        timed(lambda: step(compiled, optimizer, images, labels, dtype), device)
        for _ in range(steps)
    )
    saving = eager - fast
    break_even = compile_seconds / saving if saving > 0 else float("inf")
    row = {
        "network": name,
        "batch": batch_size,
        "GFLOP/step": flops / 1e9,
        "compile s": compile_seconds,
        "eager s/step": eager,
        "compiled s/step": fast,
        "speed-up": eager / fast,
        "eager GFLOP/s": flops / eager / 1e9,
        "compiled GFLOP/s": flops / fast / 1e9,
        "break-even steps": break_even,
        "profile run steps": run_steps,
        "compile pays": run_steps > break_even,
    }
    print(f"  {name}: {format_row(row)}", flush=True)
    return row


def format_value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == float("inf"):
            return "never"
        return f"{value:.2f}" if value < 10 else f"{value:,.0f}"
    return str(value)


def format_row(row: dict) -> str:
    return ", ".join(f"{key} {format_value(value)}" for key, value in row.items())


def format_table(rows: list[dict], markdown: bool) -> str:
    header = list(rows[0])
    cells = [[format_value(row[key]) for key in header] for row in rows]
    if markdown:
        return runner.markdown_table(header, cells)
    widths = [max(len(text) for text in column) for column in zip(header, *cells)]
    return "\n".join(
        "  ".join(text.rjust(width) for text, width in zip(row, widths)) for row in [header, *cells]
    )


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    parser.add_argument("--steps", type=int, default=5, help="timed steps per median (default 5)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the profile's")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be a whole number >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runtime.keep_freed_memory()  # as the lab's training commands do
    device = runtime.select_device("auto")
    dtype = runtime.select_precision(device, args.precision)
    peak = matmul_gflops(device, dtype)
    precision = "bf16" if dtype is not None else "fp32"
    print(
        f"{runtime.describe_runtime(device, dtype, True)}; matmul {peak:,.0f} GFLOP/s", flush=True
    )
    rows = [measure(name, device, dtype, args.steps, args.batch_size) for name in args.networks]
    for row in rows:
        row["eager % of matmul"] = 100 * row["eager GFLOP/s"] / peak
        row["compiled % of matmul"] = 100 * row["compiled GFLOP/s"] / peak
    print()
    print(format_table(rows, args.markdown))
    print()
    where = runtime.cpu_name() if device.type == "cpu" else str(device)
    print(
        f"Machine: {where}, {torch.get_num_threads()} torch threads; torch {torch.__version__}; "
        f"{precision}; matmul {MATMUL_SIZE}x{MATMUL_SIZE} {peak:,.0f} GFLOP/s; median of "
        f"{args.steps} steps after one warm-up."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
