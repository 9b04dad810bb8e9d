"""The ``tinytorch`` command, end to end in subprocesses."""

import csv
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tinytorch as tt

pytest.importorskip("sklearn")

CMD = [sys.executable, "-m", "tinytorch.cli"]


def run(*args, timeout=300):
    return subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=timeout)


def test_train_one_epoch_writes_checkpoint_metrics_and_plot(tmp_path):
    out = tmp_path / "run"
    res = run("train", "--epochs", "1", "--out", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "epoch   1/1" in res.stdout
    for name in ("checkpoint.safetensors", "metrics.json", "metrics.csv", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["dataset"] == "digits"
    assert metrics["history"]["eval_acc"][-1] > 0.5  # chance is 0.1
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 1 and float(rows[0]["eval_acc"]) > 0.5
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    ev = run("evaluate", str(out / "checkpoint.safetensors"))
    assert ev.returncode == 0, ev.stderr
    assert "test accuracy" in ev.stdout and "confusion matrix" in ev.stdout
    matrix = [line.split()[1:] for line in ev.stdout.splitlines()[-10:]]
    assert sum(int(v) for row in matrix for v in row) == 359


def _params(path):
    state = tt.load(path)
    return {k: np.asarray(v) for k, v in state["model"].items()}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_then_resume_matches_uninterrupted_run(tmp_path, sig):
    epochs = "12"
    common = ["--epochs", epochs, "--no-progress", "--no-plot", "--seed", "3"]
    ref = run("train", *common, "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr

    out = tmp_path / "cut"
    proc = subprocess.Popen([*CMD, "train", *common, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait for the first epoch, then interrupt somewhere in the middle of training.
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "metrics.json").exists():
        time.sleep(0.01)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("training finished before the signal arrived")
    assert proc.returncode == 128 + sig, stderr
    assert "checkpoint saved" in stdout and "Traceback" not in stderr
    interrupted = tt.load(out / "checkpoint.safetensors")["progress"]
    assert interrupted["epoch"] < int(epochs)

    res = run("train", "--out", str(out), "--resume", "--no-progress", "--no-plot")
    assert res.returncode == 0, res.stderr
    assert "resuming" in res.stdout
    a, b = _params(tmp_path / "ref" / "checkpoint.safetensors"), _params(
        out / "checkpoint.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_runs_are_deterministic_for_a_seed(tmp_path):
    args = ["--epochs", "2", "--no-progress", "--no-plot", "--seed", "7"]
    assert run("train", *args, "--out", str(tmp_path / "a")).returncode == 0
    assert run("train", *args, "--out", str(tmp_path / "b")).returncode == 0
    a, b = _params(tmp_path / "a/checkpoint.safetensors"), _params(
        tmp_path / "b/checkpoint.safetensors")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_missing_dataset_and_resume_errors_are_clear(tmp_path):
    res = run("train", "--dataset", "fashion-mnist", "--data-root", str(tmp_path / "none"),
              "--out", str(tmp_path / "x"))
    assert res.returncode == 2
    assert "apt-get install" in res.stderr or "dataset-fashion-mnist" in res.stderr
    res = run("train", "--resume", "--out", str(tmp_path / "empty"))
    assert res.returncode == 2 and "no checkpoint" in res.stderr


def test_cli_module_has_a_main_for_the_console_script():
    from tinytorch.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
