"""Checkpoints: exact round trips, atomic writes, and refusing anything not safetensors."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinytorch as tt
from tinytorch import optim
from tinytorch.serialization import CheckpointError, load, save
from tinytorch.serialization import _write_chunks as real_write_chunks


def assert_same(a, b, where="state"):
    """Exact equality of nested states: types, dtypes, shapes, values, nesting."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, (tt.Tensor, np.ndarray)):
        x, y = np.asarray(a), np.asarray(b)
        assert x.dtype == y.dtype and x.shape == y.shape, where
        np.testing.assert_array_equal(x, y, err_msg=where)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def trained_state():
    rng = np.random.default_rng(0)
    w = tt.tensor(rng.normal(size=(4, 3)).astype(np.float32), requires_grad=True)
    b = tt.tensor(np.zeros(3, np.float32), requires_grad=True)
    opt = optim.Adam([w, b], lr=0.01, amsgrad=True)
    for _ in range(2):
        opt.zero_grad()
        ((tt.tensor(rng.normal(size=(5, 4)).astype(np.float32)) @ w + b) ** 2).mean().backward()
        opt.step()
    model = {"fc.weight": w.detach(), "fc.bias": b.detach()}
    return model, opt


def rich_state():
    model, opt = trained_state()
    return {
        "model": model,
        "optimizer": opt.state_dict(),
        "epoch": 3,
        "step": 1200,
        "config": {"lr": 0.1, "betas": [0.9, 0.999], "name": "mlp-ü", "layers": [64, 10],
                   "dropout": None, "amp": False, "nested": {"a.b": {"c": []}, "empty": {}}},
        "dtypes": {str(dt): np.arange(6).reshape(2, 3).astype(dt) for dt in
                   (np.float64, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint8,
                    np.uint16, np.uint32, np.uint64, np.bool_)},
        "scalar": tt.tensor(np.float64(2.5)),
        "empty": np.zeros((0, 4), np.float32),
        "list_of_tensors": [tt.tensor([1.0, 2.0]), {"x": np.ones(2)}],
        "nan": float("nan"),
        "inf": float("-inf"),
        "big_endian": np.arange(3, dtype=">i4"),
    }


def test_round_trip_is_exact(tmp_path):
    state = rich_state()
    save(state, tmp_path / "ckpt.safetensors")
    back = load(tmp_path / "ckpt.safetensors")
    state["big_endian"] = state["big_endian"].astype("<i4")  # values and kind are kept
    assert_same(state, back)
    assert isinstance(back["model"]["fc.weight"], tt.Tensor)
    assert isinstance(back["optimizer"]["state"]["0"]["exp_avg"], np.ndarray)
    assert back["model"]["fc.weight"].data.flags.writeable
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_tuples_and_numpy_scalars_become_json_values(tmp_path):
    save({"t": (1, 2), "n": np.float32(0.5), "i": np.int64(7)}, tmp_path / "c")
    assert load(tmp_path / "c") == {"t": [1, 2], "n": 0.5, "i": 7}


def test_optimizer_and_scheduler_resume_through_a_checkpoint(tmp_path):
    model, opt = trained_state()
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "c")
    ps = [p.detach().clone().requires_grad_() for p in opt.param_groups[0]["params"]]
    opt2 = optim.Adam(ps, lr=0.5)
    sched2 = optim.lr_scheduler.StepLR(opt2, step_size=1, gamma=0.5)
    back = load(tmp_path / "c")
    opt2.load_state_dict(back["optimizer"])
    sched2.load_state_dict(back["scheduler"])
    grads = [np.full(p.shape, 0.3, p.dtype) for p in ps]
    for o, s in ((opt, sched), (opt2, sched2)):
        for _ in range(3):
            for p, g in zip(o.param_groups[0]["params"], grads):
                p.grad = tt.tensor(g)
            o.step()
            s.step()
    for a, b in zip(opt.param_groups[0]["params"], ps):
        np.testing.assert_array_equal(a.data, b.data)
    assert sched.get_last_lr() == sched2.get_last_lr()


def test_interoperates_with_the_safetensors_package(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    model, _ = trained_state()
    save({k: v for k, v in model.items()}, tmp_path / "ours")
    theirs = st_numpy.load_file(str(tmp_path / "ours"))
    np.testing.assert_array_equal(theirs["fc.weight"], model["fc.weight"].data)
    st_numpy.save_file({"a.b": np.arange(4.0), "c": np.ones((2, 2), np.int32)},
                       str(tmp_path / "theirs"))
    back = load(tmp_path / "theirs")
    assert set(back) == {"a.b", "c"} and back["c"].dtype == np.int32


@pytest.mark.parametrize("state,error,match", [
    ({1: np.zeros(2)}, TypeError, "keys must be strings"),
    ({"a": np.array([object()])}, TypeError, "dtype object"),
    ({"a": np.zeros(2, np.complex64)}, TypeError, "complex64"),
    ({"a": {1, 2}}, TypeError, "type set"),
    ({"a": {"b": np.zeros(1)}, "a.b": np.zeros(1)}, ValueError, "'a.b'"),
    ({"x": {"__tensor__": 1}}, ValueError, "reserved"),
    ([np.zeros(1)], TypeError, "must be a dict"),
])
def test_save_refuses_what_it_cannot_store(tmp_path, state, error, match):
    with pytest.raises(error, match=match):
        save(state, tmp_path / "c")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------- atomicity
def test_failure_mid_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    old = {"w": np.arange(1000.0), "epoch": 1}
    save(old, path)

    def explode(f, chunks):
        chunks = list(chunks)
        f.write(chunks[0])
        f.write(bytes(chunks[1])[:10])
        raise OSError("disk full (injected)")

    monkeypatch.setattr("tinytorch.serialization._write_chunks", explode)
    with pytest.raises(OSError, match="injected"):
        save({"w": np.zeros(1000), "epoch": 2}, path)
    assert_same(load(path), old)
    assert os.listdir(tmp_path) == ["ckpt"]  # the temporary file was removed

    def no_fsync(fd):
        raise OSError("fsync failed (injected)")

    monkeypatch.setattr("tinytorch.serialization._write_chunks", real_write_chunks)
    monkeypatch.setattr("tinytorch.serialization.os.fsync", no_fsync)
    with pytest.raises(OSError, match="injected"):
        save({"w": np.zeros(1000), "epoch": 3}, path)
    assert_same(load(path), old)
    assert os.listdir(tmp_path) == ["ckpt"]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_killed_writer_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt"
    old = {"w": np.arange(10.0), "epoch": 1}
    save(old, path)
    child = textwrap.dedent(f"""
        import os, signal, numpy as np
        import tinytorch.serialization as s
        def die(f, chunks):
            chunks = list(chunks)
            f.write(chunks[0]); f.write(chunks[1]); f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        s._write_chunks = die
        s.save({{"w": np.zeros(10 ** 6), "epoch": 2}}, {str(path)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert_same(load(path), old)


# ----------------------------------------------------------------- refusing bad files
class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_crafted_pickle_is_refused_and_never_runs(tmp_path, protocol):
    marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"model": RunsCode(marker)}, protocol=protocol))
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load(path)
    assert not os.path.exists(marker)


def test_torch_save_file_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.zeros(3)}, tmp_path / "t.pt")
    with pytest.raises(CheckpointError):
        load(tmp_path / "t.pt")


@functools.cache
def valid_blob() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "good")
        save({"model": {"w": np.arange(12.0).reshape(3, 4)},
              "b": tt.tensor([1, 2], dtype="int64"), "epoch": 4}, path)
        with open(path, "rb") as f:
            return f.read()


def test_every_truncation_is_refused(tmp_path):
    blob = valid_blob()
    for cut in range(len(blob)):
        (tmp_path / "cut").write_bytes(blob[:cut])
        with pytest.raises(CheckpointError):
            load(tmp_path / "cut")


def header_file(header, data=b"", raw=None):
    body = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(body)) + body + data


F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
BAD_FILES = {
    "garbage": os.urandom(64),
    "tiny": b"\x01\x02",
    "huge header length": struct.pack("<Q", 2**63) + b"{}",
    "header not json": header_file(None, raw=b"{not json"),
    "header not utf8": header_file(None, raw=b"{\xff\xfe}"),
    "header a list": header_file(None, raw=b"[1, 2]"),
    "deep nesting": header_file(None, raw=b"{\"a\":" + b"[" * 100000 + b"]" * 100000 + b"}"),
    "duplicate keys": header_file(None, raw=b'{"a": 1, "a": 2}'),
    "unknown dtype": header_file({"w": {**F32, "dtype": "F128"}}, b"\0" * 8),
    "dtype not str": header_file({"w": {**F32, "dtype": ["F32"]}}, b"\0" * 8),
    "negative dim": header_file({"w": {**F32, "shape": [-2]}}, b"\0" * 8),
    "bool dim": header_file({"w": {**F32, "shape": [True, 2]}}, b"\0" * 8),
    "offsets past end": header_file({"w": {**F32, "data_offsets": [8, 16]}}, b"\0" * 8),
    "offsets reversed": header_file({"w": {**F32, "data_offsets": [8, 0]}}, b"\0" * 8),
    "size mismatch": header_file({"w": {**F32, "shape": [3]}}, b"\0" * 8),
    "overlap": header_file({"a": F32, "b": {**F32, "data_offsets": [4, 12]}}, b"\0" * 12),
    "extra field": header_file({"w": {**F32, "x": 1}}, b"\0" * 8),
    "metadata not str": header_file({"__metadata__": {"a": 1}}),
    "bad structure": header_file({"__metadata__": {"tinytorch": "{not json"}}),
    "dangling tensor": header_file({"__metadata__": {"tinytorch": json.dumps(
        {"w": {"__tensor__": "nope", "kind": "tensor"}})}}),
    "unhashable name": header_file({"__metadata__": {"tinytorch": json.dumps(
        {"w": {"__tensor__": [1], "kind": "tensor"}})}}),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_malformed_files_are_refused(tmp_path, name):
    (tmp_path / "bad").write_bytes(BAD_FILES[name])
    with pytest.raises(CheckpointError, match="load: "):
        load(tmp_path / "bad")


def test_huge_shape_is_refused_before_allocating(tmp_path):
    header = {"w": {"dtype": "F64", "shape": [10**6, 10**6], "data_offsets": [0, 8 * 10**12]}}
    (tmp_path / "liar").write_bytes(header_file(header, b"\0" * 64))
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="outside"):
            load(tmp_path / "liar")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_files_load_or_raise_checkpoint_error(tmp_path, data):
    blob = bytearray(valid_blob())
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    blob = blob[: data.draw(st.integers(0, len(blob)))]
    (tmp_path / "fuzz").write_bytes(bytes(blob))
    with contextlib.suppress(CheckpointError):
        load(tmp_path / "fuzz")
