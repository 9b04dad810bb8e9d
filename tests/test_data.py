"""Datasets, DataLoader, random_split, the IDX reader and the bundled/real datasets."""

from __future__ import annotations

import gzip
import os
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinytorch as tt
from tinytorch.data import (
    MNIST,
    DataLoader,
    Dataset,
    DatasetError,
    DatasetNotFoundError,
    FashionMNIST,
    Subset,
    TensorDataset,
    default_collate,
    load_digits,
    random_split,
    read_idx,
)


class PerSample(Dataset):
    """Same samples as a TensorDataset, but only reachable one at a time (slow path)."""

    def __init__(self, *arrays):
        self.arrays = arrays

    def __getitem__(self, i):
        return tuple(a[i] for a in self.arrays)

    def __len__(self):
        return len(self.arrays[0])


def toy(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = (np.arange(n) % 4).astype(np.int32)
    return x, y


# ----------------------------------------------------------------- Dataset / DataLoader
def test_tensor_dataset_indexing_and_errors():
    x, y = toy()
    ds = TensorDataset(x, tt.tensor(y, dtype="int64"))
    xi, yi = ds[4]
    assert len(ds) == 10 and isinstance(xi, tt.Tensor)
    np.testing.assert_array_equal(xi.data, x[4])
    assert int(yi) == y[4]
    with pytest.raises(ValueError, match="first dimensions"):
        TensorDataset(x, y[:5])
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(np.float32(1.0))
    with pytest.raises(ValueError):
        TensorDataset()


@pytest.mark.parametrize("drop_last,sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_batches_shapes_dtypes_and_drop_last(drop_last, sizes):
    x, y = toy()
    loader = DataLoader(TensorDataset(x, y), batch_size=4, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(sizes) == len(batches)
    assert [b[0].shape for b in batches] == [(s, 3) for s in sizes]
    for bx, by in batches:
        assert isinstance(bx, tt.Tensor) and bx.dtype == np.float32
        assert by.dtype == np.int64 and not bx.requires_grad
    np.testing.assert_array_equal(np.concatenate([b[0].data for b in batches]),
                                  x[: sum(sizes)])


@pytest.mark.parametrize("cls", [TensorDataset, PerSample])
def test_dtypes_kept_except_integer_labels(cls):
    arrays = (np.zeros((3, 2)), np.zeros((3, 4, 4), np.uint8), np.arange(3, dtype=np.uint8),
              np.zeros(3, np.bool_))
    batch = next(iter(DataLoader(cls(*arrays), batch_size=2)))
    assert [b.dtype for b in batch] == [np.float64, np.uint8, np.int64, np.bool_]


def test_shuffle_is_deterministic_with_a_seed_and_covers_everything():
    x, y = toy(50)
    ds = TensorDataset(x, y)

    def order(loader):
        return np.concatenate([by.data for _, by in loader]), \
            np.concatenate([bx.data[:, 0] for bx, _ in loader])

    a = DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(3))
    b = DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(3))
    first_a, first_b = order(a)[1], order(b)[1]
    np.testing.assert_array_equal(first_a, first_b)
    assert sorted(first_a.tolist()) == sorted(x[:, 0].tolist())
    assert not np.array_equal(first_a, x[:, 0])  # actually shuffled
    assert not np.array_equal(order(a)[1], first_a)  # a new order every epoch
    tt.manual_seed(11)
    c = order(DataLoader(ds, batch_size=8, shuffle=True))[1]
    tt.manual_seed(11)
    d = order(DataLoader(ds, batch_size=8, shuffle=True))[1]
    np.testing.assert_array_equal(c, d)
    e = order(DataLoader(ds, batch_size=8, shuffle=True, generator=5))[1]
    f = order(DataLoader(ds, batch_size=8, shuffle=True, generator=5))[1]
    np.testing.assert_array_equal(e, f)


@pytest.mark.parametrize("subset", [False, True])
def test_fast_path_matches_per_sample_path(subset):
    x, y = toy(23)
    fast_ds, slow_ds = TensorDataset(x, y), PerSample(x, y)
    if subset:
        idx = np.array([5, 3, 22, 0, 9, 14, 7, 1])
        fast_ds, slow_ds = Subset(Subset(fast_ds, np.arange(23)[::-1]), idx), \
            Subset(Subset(slow_ds, np.arange(23)[::-1]), idx)
    fast = DataLoader(fast_ds, batch_size=5, shuffle=True, generator=1)
    slow = DataLoader(slow_ds, batch_size=5, shuffle=True, generator=1)
    for (fx, fy), (sx, sy) in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(fx.data, sx.data)
        np.testing.assert_array_equal(fy.data, sy.data)
        assert fx.dtype == sx.dtype and fy.dtype == sy.dtype == np.int64


def test_collate_fn_and_default_collate_kinds():
    x, y = toy(6)
    loader = DataLoader(TensorDataset(x, y), batch_size=4, collate_fn=lambda b: len(b))
    assert list(loader) == [4, 2]
    batch = default_collate([{"x": [1.5, 2], "name": "a", "flag": True},
                             {"x": [0.5, 3], "name": "b", "flag": False}])
    assert batch["x"][0].dtype == np.float32 and batch["x"][1].dtype == np.int64
    assert batch["name"] == ["a", "b"] and batch["flag"].dtype == np.bool_
    with pytest.raises(TypeError, match="cannot batch"):
        default_collate([object(), object()])


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None, "4"])
def test_batch_size_must_be_positive_int(bad):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader(TensorDataset(*toy()), batch_size=bad)


def test_empty_dataset_yields_nothing():
    assert list(DataLoader(TensorDataset(np.zeros((0, 3))), batch_size=2)) == []


def test_random_split():
    ds = TensorDataset(np.arange(10))
    parts = random_split(ds, [7, 3], generator=np.random.default_rng(0))
    again = random_split(ds, [7, 3], generator=np.random.default_rng(0))
    assert [len(p) for p in parts] == [7, 3]
    ids = [int(p[i][0]) for p in parts for i in range(len(p))]
    assert sorted(ids) == list(range(10))
    assert ids == [int(p[i][0]) for p in again for i in range(len(p))]
    assert [len(p) for p in random_split(ds, [0.5, 0.3, 0.2], generator=1)] == [5, 3, 2]
    assert [len(p) for p in random_split(TensorDataset(np.arange(11)), [0.5, 0.5])] == [6, 5]
    with pytest.raises(ValueError, match="sum to 9"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError):
        random_split(ds, [-1, 11])


# ----------------------------------------------------------------- IDX reader
CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
         np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    big = arr.astype(np.dtype(arr.dtype).newbyteorder(">")) if arr.dtype.itemsize > 1 else arr
    code = CODES[np.dtype(big.dtype)]
    return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) \
        + big.tobytes()


def write(path, payload: bytes, gz: bool):
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(payload)
    return path


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("arr", [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.array([-3, 0, 7], dtype=np.int8),
    np.arange(-6, 6, dtype=np.int16).reshape(3, 4),
    np.array([1, -2, 1 << 30], dtype=np.int32),
    np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
    np.array([np.pi, -1e300], dtype=np.float64),
    np.zeros((0, 5), dtype=np.uint8),
], ids=lambda a: f"{a.dtype}{a.shape}")
def test_idx_round_trip(tmp_path, arr, gz):
    got = read_idx(write(tmp_path / "f-idx", idx_bytes(arr), gz))
    assert got.shape == arr.shape and got.dtype == arr.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, arr)


GOOD = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
MALFORMED = {
    "empty": b"",
    "short magic": b"\0\0\x08",
    "bad magic": b"\x01\x02\x08\x01" + GOOD[4:],
    "pickle": b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00",
    "dtype code": b"\0\0\x0a\x03" + GOOD[4:],
    "zero dims": b"\0\0\x08\x00",
    "truncated header": GOOD[:10],
    "truncated data": GOOD[:-1],
    "extra data": GOOD + b"\0",
    "oversized header": b"\0\0\x08\x03" + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 1000)
                        + GOOD[16:],
}


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name", list(MALFORMED))
def test_idx_malformed_files_raise_dataset_error(tmp_path, name, gz):
    path = write(tmp_path / "bad", MALFORMED[name], gz)
    with pytest.raises(DatasetError, match="read_idx"):
        read_idx(path)


def test_idx_damaged_gzip(tmp_path):
    blob = gzip.compress(GOOD)
    damaged = blob[:12] + bytes(b ^ 0xFF for b in blob[12:20]) + blob[20:]
    for payload in (blob[: len(blob) // 2], damaged, blob[:-4] + b"\0\0\0\0"):
        with pytest.raises(DatasetError):
            read_idx(write(tmp_path / "bad.gz", payload, gz=False))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_does_not_allocate_what_the_header_claims(tmp_path, gz):
    # The header claims 1000^3 bytes (1 GB) but the file holds a few bytes.
    payload = b"\0\0\x08\x03" + struct.pack(">3I", 1000, 1000, 1000) + b"\0" * 64
    path = write(tmp_path / "liar", payload, gz)
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


def test_idx_missing_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        read_idx(tmp_path / "nope")


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), gz=st.booleans())
def test_idx_fuzz_mutations_only_raise_dataset_error(tmp_path, data, gz):
    payload = bytearray(GOOD)
    cut = data.draw(st.integers(0, len(payload) + 8))
    payload = payload[:cut] + bytes(data.draw(st.binary(max_size=8)) if cut > len(GOOD) else b"")
    for _ in range(data.draw(st.integers(0, 4))):
        if payload:
            i = data.draw(st.integers(0, len(payload) - 1))
            payload[i] = data.draw(st.integers(0, 255))
    path = write(tmp_path / "fuzz", bytes(payload), gz)
    try:
        arr = read_idx(path)
    except DatasetError:
        return
    assert isinstance(arr, np.ndarray)


# ----------------------------------------------------------------- MNIST-style folders
def write_mnist(folder, n_train=5, n_test=3, gz=True, dotted=False, label_hi=10):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, label_hi, size=n, dtype=np.uint8)
        for kind, arr, nd in (("images", images, 3), ("labels", labels, 1)):
            name = f"{split}-{kind}{'.' if dotted else '-'}idx{nd}-ubyte" + (".gz" if gz else "")
            write(os.path.join(folder, name), idx_bytes(arr), gz)


@pytest.mark.parametrize("gz,dotted,sub", [(True, False, ""), (False, True, ""),
                                           (True, False, "MNIST/raw")])
def test_mnist_from_folder(tmp_path, gz, dotted, sub):
    write_mnist(tmp_path / sub if sub else tmp_path, gz=gz, dotted=dotted)
    train, test = MNIST(tmp_path), MNIST(str(tmp_path), train=False, flatten=True)
    assert len(train) == 5 and len(test) == 3
    x, y = train.tensors
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.data.min() >= 0.0 and x.data.max() <= 1.0
    assert test.tensors[0].shape == (3, 784)
    assert len(MNIST.classes) == 10


def test_mnist_bad_contents(tmp_path):
    write_mnist(tmp_path, label_hi=200)
    with pytest.raises(DatasetError, match="labels must lie"):
        MNIST(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(4, np.uint8)), True)
    with pytest.raises(DatasetError, match="expected images"):
        MNIST(tmp_path)


def test_missing_datasets_say_how_to_get_them(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(tmp_path)
    msg = str(info.value)
    assert str(tmp_path) in msg and "train-images-idx3-ubyte" in msg
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        FashionMNIST(root=tmp_path)
    with pytest.raises(TypeError, match="root"):
        MNIST()


@pytest.mark.skipif(not os.path.isdir(FashionMNIST.default_root),
                    reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_test_split():
    ds = FashionMNIST(train=False)
    x, y = ds.tensors
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    assert np.bincount(y.data).tolist() == [1000] * 10


# ----------------------------------------------------------------- digits
def test_load_digits():
    train, test = load_digits()
    x, y = train.tensors
    assert len(train) + len(test) == 1797
    assert x.shape[1:] == (1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.data.min() == 0.0 and x.data.max() == 1.0
    xt, yt, xs, ys = load_digits(flatten=True, as_arrays=True)
    assert xt.shape[1] == 64 and len(xs) == len(test)
    np.testing.assert_array_equal(xt.reshape(x.shape), x.data)  # deterministic
    assert set(np.unique(ys)) == set(range(10))  # stratified: every class is tested
    other = load_digits(seed=1, as_arrays=True)[3]
    assert not np.array_equal(other, ys)
    loader = DataLoader(train, batch_size=64, shuffle=True, generator=0)
    bx, by = next(iter(loader))
    assert bx.shape == (64, 1, 8, 8) and by.shape == (64,)
