"""Device, precision, memory format, seeds, workers, progress bars: chosen by looking."""

import io
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from labutils import models, runtime

AMX_CPU = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
"""
AVX512_BF16_CPU = "model name\t: AMD EPYC 9654\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n"
AVX2_CPU = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse sse2 avx avx2 fma bmi2\n"
ARM_CPU = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"


@pytest.mark.parametrize(
    "cpuinfo, expected",
    [
        (AMX_CPU, True),
        (AVX512_BF16_CPU, True),
        (AVX2_CPU, False),
        (ARM_CPU, False),
        ("", False),
    ],
)
def test_cpuinfo_flags_decide_native_bf16(cpuinfo, expected):
    assert runtime.flags_have_native_bf16(cpuinfo) is expected


def test_a_flag_name_inside_another_word_does_not_count():
    assert not runtime.flags_have_native_bf16("flags\t: avx2 not_amx_bf16_really\n")


def test_flags_outside_the_flags_line_do_not_count():
    assert not runtime.flags_have_native_bf16("model name\t: amx_bf16 special\nflags\t: avx2\n")


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="no /proc/cpuinfo here")
def test_this_cpus_bf16_support_is_read_from_proc_cpuinfo():
    text = Path("/proc/cpuinfo").read_text(errors="replace")
    assert runtime.cpu_has_native_bf16() == runtime.flags_have_native_bf16(text)


def test_auto_device_is_one_this_machine_has():
    device = runtime.select_device("auto")
    assert device.type in ("cpu", "cuda", "mps")
    assert runtime.select_device(None) == device


def test_cpu_device_is_always_available():
    assert runtime.select_device("cpu") == torch.device("cpu")
    assert runtime.select_device(" CPU ") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_asking_for_a_missing_gpu_says_what_was_found_and_what_to_pass():
    with pytest.raises(ValueError) as error:
        runtime.select_device("cuda")
    message = str(error.value)
    assert "'cuda'" in message and "found: cpu" in message and "auto" in message


def test_asking_for_a_gpu_index_beyond_those_found_is_refused():
    with pytest.raises(ValueError, match="cuda:99"):
        runtime.select_device("cuda:99")


def test_unknown_device_names_the_valid_choices():
    with pytest.raises(ValueError) as error:
        runtime.select_device("tpu")
    for choice in ("auto", "cpu", "cuda", "mps"):
        assert choice in str(error.value)


def test_cpu_precision_is_bf16_only_with_native_support():
    assert (
        runtime.select_precision("cpu", cpu_bf16=runtime.flags_have_native_bf16(AMX_CPU))
        == torch.bfloat16
    )
    assert (
        runtime.select_precision("cpu", cpu_bf16=runtime.flags_have_native_bf16(AVX2_CPU)) is None
    )


def test_cpu_precision_follows_this_machines_cpu():
    """bf16 exactly when the kernel lists a native bf16 unit among this CPU's flags."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo to read the CPU's flags from")
    flags = set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            flags |= set(line.partition(":")[2].split())
    expected = torch.bfloat16 if flags & {"amx_bf16", "avx512_bf16"} else None
    assert runtime.select_precision(torch.device("cpu")) == expected


def test_explicit_precision_is_honoured():
    assert runtime.select_precision("cpu", "bf16", cpu_bf16=False) == torch.bfloat16
    assert runtime.select_precision("cpu", "fp32", cpu_bf16=True) is None


def test_mps_precision_is_fp32():
    assert runtime.select_precision("mps", "auto") is None


def test_unknown_precision_names_the_choices():
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        runtime.select_precision("cpu", "fp16")


def test_autocast_with_bf16_runs_matmuls_in_bf16():
    with runtime.autocast("cpu", torch.bfloat16):
        product = torch.ones(2, 2) @ torch.ones(2, 2)
    assert product.dtype == torch.bfloat16


def test_autocast_for_fp32_changes_nothing():
    with runtime.autocast("cpu", None):
        product = torch.ones(2, 2) @ torch.ones(2, 2)
    assert product.dtype == torch.float32


def test_channels_last_is_used_for_conv_nets_on_cpu_and_cuda_only():
    assert runtime.use_channels_last(models.CNN(), "cpu")
    assert runtime.use_channels_last(models.CNN(), "cuda")
    assert not runtime.use_channels_last(models.CNN(), "mps")
    assert not runtime.use_channels_last(models.MLP(), "cpu")


def test_runtime_description_is_one_line_naming_device_precision_and_layout():
    line = runtime.describe_runtime(torch.device("cpu"), None, True)
    assert "\n" not in line
    assert line.startswith("device=cpu (")
    assert "threads" in line and "precision=fp32" in line
    assert line.endswith("memory_format=channels_last")


def test_runtime_description_names_bf16_autocast():
    line = runtime.describe_runtime("cpu", torch.bfloat16, False)
    assert "precision=bf16 autocast" in line and "memory_format=contiguous" in line


def test_seeding_makes_every_generator_repeat():
    runtime.seed_everything(123)
    first = (random.random(), np.random.rand(), torch.rand(3))
    runtime.seed_everything(123)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == second[:2]
    assert torch.equal(first[2], second[2])


def test_seed_must_be_a_whole_number():
    with pytest.raises(ValueError, match="seed"):
        runtime.seed_everything(1.5)


def test_progress_bars_are_on_by_default(monkeypatch):
    monkeypatch.delenv(runtime.PROGRESS_ENV, raising=False)
    assert runtime.progress_enabled() is True


@pytest.mark.parametrize("value", ["0", "false", "No", " off "])
def test_progress_environment_variable_turns_bars_off(monkeypatch, value):
    monkeypatch.setenv(runtime.PROGRESS_ENV, value)
    assert runtime.progress_enabled() is False


def test_progress_environment_variable_can_keep_bars_on(monkeypatch):
    monkeypatch.setenv(runtime.PROGRESS_ENV, "1")
    assert runtime.progress_enabled() is True


def test_explicit_progress_flag_beats_the_environment(monkeypatch):
    monkeypatch.setenv(runtime.PROGRESS_ENV, "0")
    assert runtime.progress_enabled(True) is True
    monkeypatch.setenv(runtime.PROGRESS_ENV, "1")
    assert runtime.progress_enabled(False) is False


FAULTS_PER_CYCLE = """
import resource, sys, torch
from labutils import runtime, train  # a training process: the training stack is loaded

def faults_filling(size):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.empty(size, dtype=torch.uint8)
    block.fill_(1)  # writing touches every page
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del block
    return after - before

kept = sys.argv[1] == "keep" and runtime.keep_freed_memory()
print(kept, *[faults_filling(200 * 2 ** 20) for _ in range(8)])
"""


def page_faults_per_cycle(mode: str) -> tuple[bool, list[int]]:
    """In a fresh process: page faults of 8 cycles of allocating, writing and freeing 200 MB."""
    result = subprocess.run(
        [sys.executable, "-c", FAULTS_PER_CYCLE, mode], check=True, capture_output=True, text=True
    )
    kept, *faults = result.stdout.split()
    return kept == "True", [int(count) for count in faults]


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
    reason="malloc's thresholds are a glibc setting",
)
@pytest.mark.slow
def test_freed_activations_are_reused_without_fresh_pages():
    pages = 200 * 2**20 // 4096  # larger than glibc's default mmap threshold (at most 32 MiB)
    kept, faults = page_faults_per_cycle("keep")
    assert kept
    # The first cycles get new pages (the heap grows); the later ones reuse them ...
    assert sum(count < pages // 10 for count in faults[2:]) >= 4, faults
    # ... where by default every cycle takes a fault per page.
    _, faults = page_faults_per_cycle("default")
    assert all(count > pages // 2 for count in faults), faults


def test_uses_convolutions_tells_conv_nets_from_the_mlp():
    assert not runtime.uses_convolutions(models.MLP())
    assert runtime.uses_convolutions(models.CNN())
    assert runtime.uses_convolutions(models.ResNet9())
    assert not runtime.uses_convolutions(torch.nn.Linear(2, 2))


@pytest.mark.parametrize(
    "seconds, words", [(0.123, "0.12 s"), (38.4, "38 s"), (840, "14 min"), (5760, "1.6 h")]
)
def test_format_duration_picks_the_unit_a_person_reads(seconds, words):
    assert runtime.format_duration(seconds) == words


def test_a_progress_bar_in_a_log_file_prints_lines_not_carriage_returns(monkeypatch):
    monkeypatch.setattr(runtime, "PROGRESS_LOG_SECONDS", 0.01)
    log = io.StringIO()  # not a terminal, as a file that output is redirected to
    for _ in runtime.progress_bar(range(6), enabled=True, file=log, desc="epoch 1/1"):
        time.sleep(0.02)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and log.getvalue().endswith("\n")
    assert len(lines) > 2 and all(line.startswith("epoch 1/1") for line in lines)
    assert "6/6" in lines[-1]


def test_a_progress_bar_in_a_log_file_prints_seldom():
    log = io.StringIO()
    for _ in runtime.progress_bar(range(1000), enabled=True, file=log, mininterval=0):
        pass
    assert len(log.getvalue().splitlines()) <= 3  # the start, the end: not a line per step


def test_a_progress_bar_is_off_as_progress_enabled_says(monkeypatch):
    monkeypatch.setenv(runtime.PROGRESS_ENV, "0")
    log = io.StringIO()
    for _ in runtime.progress_bar(range(3), file=log):
        pass
    assert log.getvalue() == ""
