"""Nothing in the package can run code hidden in data.

1. A static scan of every file under ``src/tinytorch``: Python files are parsed (``ast``)
   and may not import ``pickle``/``marshal``/``shelve`` (or their relatives), name
   ``eval``/``exec``/``__import__``, or pass ``allow_pickle`` as anything but ``False``;
   words in comments and docstrings do not count (``Module.eval()`` is a method, not the
   builtin). No other file may be pickled data. The scanner is itself checked on
   snippets it must flag and snippets it must let through.
2. At run time, ``tinytorch.load`` never reaches an unpickler or ``np.load(...,
   allow_pickle=True)``, whatever the file holds: a crafted pickle hidden in an ``.npy``
   or ``.npz`` file (NumPy's own pickle path) is refused and its payload never runs.
   (A bare pickle file with a ``__reduce__`` payload is covered by
   ``test_serialization.py::test_crafted_pickle_is_refused_and_never_runs``.)
"""

from __future__ import annotations

import ast
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import CheckpointError

PACKAGE = Path(tt.__file__).resolve().parent

FORBIDDEN_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "joblib",
                     "marshal", "shelve", "copyreg", "pickletools"}
FORBIDDEN_NAMES = {"eval", "exec", "__import__"} | FORBIDDEN_MODULES
PICKLE_MAGIC = tuple(bytes([0x80, p]) for p in range(2, 6))  # protocol 2-5 headers


def _module_root(name: str | None) -> str:
    return (name or "").split(".")[0]


def _allows_pickle(value: ast.expr) -> bool:
    return not (isinstance(value, ast.Constant) and value.value is False)


def scan_source(source: str, filename: str = "<snippet>") -> list[str]:
    """``file:line: what`` for every forbidden construct in Python ``source``."""
    found: list[str] = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _module_root(alias.name) in FORBIDDEN_MODULES:
                    flag(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if _module_root(node.module) in FORBIDDEN_MODULES:
                flag(node, f"from {node.module} import ...")
            for alias in node.names:
                if alias.name in FORBIDDEN_NAMES:
                    flag(node, f"from {node.module} import {alias.name}")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            flag(node, f"uses {node.id}")
        elif isinstance(node, ast.Attribute) and (
            node.attr in FORBIDDEN_MODULES
            or (node.attr in FORBIDDEN_NAMES and isinstance(node.value, ast.Name)
                and node.value.id == "builtins")
        ):
            flag(node, f"uses .{node.attr}")
        elif isinstance(node, ast.keyword) and node.arg == "allow_pickle":
            if _allows_pickle(node.value):
                flag(node.value, f"allow_pickle={ast.unparse(node.value)}")
        elif isinstance(node, ast.Dict):  # np.load(f, **{"allow_pickle": True})
            for key, value in zip(node.keys, node.values):
                if (isinstance(key, ast.Constant) and key.value == "allow_pickle"
                        and _allows_pickle(value)):
                    flag(key, "allow_pickle in a keyword dict")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in {"getattr", "globals", "vars"} and any(
                    isinstance(a, ast.Constant) and a.value in FORBIDDEN_NAMES for a in node.args):
            flag(node, f"{node.func.id}(..., {ast.unparse(node.args[-1])})")
    return found


def scan_file(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Problems in one file, named relative to ``root``."""
    rel = path.relative_to(root)
    if path.suffix == ".py":
        return scan_source(path.read_text(encoding="utf-8"), str(rel))
    if path.suffix in {".pkl", ".pickle", ".joblib", ".pt", ".pth"}:
        return [f"{rel}: a pickle-format file"]
    with open(path, "rb") as f:
        head = f.read(2)
    if head.startswith(PICKLE_MAGIC) or path.suffix in {".npy", ".npz"} and _has_objects(path):
        return [f"{rel}: pickled data"]
    return []


def _has_objects(path: Path) -> bool:
    try:
        np.load(path, allow_pickle=False)
        return False
    except ValueError:
        return True


def package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


# ----------------------------------------------------------------- the scan


def test_package_has_no_pickle_eval_or_exec() -> None:
    files = package_files()
    assert sum(p.suffix == ".py" for p in files) >= 20, f"found too few files under {PACKAGE}"
    found = [hit for path in files for hit in scan_file(path)]
    assert not found, "forbidden constructs in the package:\n" + "\n".join(found)


MUST_FLAG = {
    "import pickle": "import pickle",
    "import pickle as pk": "import pickle",
    "from pickle import loads": "from pickle",
    "import _pickle": "import _pickle",
    "import marshal": "import marshal",
    "import shelve": "import shelve",
    "from builtins import eval": "import eval",
    "x = eval('1 + 1')": "uses eval",
    "exec(code)": "uses exec",
    "f = eval": "uses eval",
    "mod = __import__('os')": "uses __import__",
    "import builtins\nbuiltins.exec(code)": "uses .exec",
    "import numpy as np\nnp.load(f, allow_pickle=True)": "allow_pickle=True",
    "np.load(f, allow_pickle=flag)": "allow_pickle=flag",
    "np.load(f, **{'allow_pickle': True})": "keyword dict",
    "np.lib.format.read_array(f, allow_pickle=1)": "allow_pickle=1",
    "import numpy\nnumpy.core.multiarray.pickle": "uses .pickle",
    "getattr(builtins, 'eval')(s)": "getattr",
    "def f():\n    import marshal\n    return marshal.loads(b)": "import marshal",
}

MUST_PASS = [
    "model.eval()",
    "class M:\n    def eval(self):\n        return self",
    '"""Never unpickles: no pickle, eval( or exec( here."""',
    "# eval(x) and pickle.load(f) would be wrong\nx = 1",
    "np.load(f, allow_pickle=False)",
    "s = 'exec(' + 'allow_pickle=True'",
    "def evaluate(trainer):\n    return trainer.evaluate()",
    "from tinytorch.nn import Module\nModule.eval",
]


@pytest.mark.parametrize("source", list(MUST_FLAG), ids=list(MUST_FLAG.values()))
def test_scanner_flags(source: str) -> None:
    found = scan_source(source)
    assert found and MUST_FLAG[source] in " ".join(found), found


@pytest.mark.parametrize("source", MUST_PASS)
def test_scanner_lets_harmless_code_through(source: str) -> None:
    assert scan_source(source) == []


def test_scanner_names_file_and_line() -> None:
    assert scan_source("x = 1\n\ny = eval('2')\n", "pkg/mod.py") == ["pkg/mod.py:3: uses eval"]


def test_scanner_flags_pickled_data_files(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "weights.bin").write_bytes(pickle.dumps({"w": 1}, protocol=4))
    np.save(tmp_path / "pkg" / "objects.npy", np.array([{"a": 1}], dtype=object),
            allow_pickle=True)  # test data only: the scan must catch it
    np.save(tmp_path / "pkg" / "plain.npy", np.arange(3.0))
    (tmp_path / "pkg" / "py.typed").write_text("")
    hits = {p.name: scan_file(p, tmp_path) for p in (tmp_path / "pkg").iterdir()}
    assert hits["weights.bin"] and hits["objects.npy"]
    assert hits["plain.npy"] == [] and hits["py.typed"] == []


# ----------------------------------------------------------------- at run time


class _Payload:
    """Unpickling this runs ``os.mkdir(marker)``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (self.marker,))


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """Make every unpickling entry point raise, and record every ``np.load`` call."""
    calls: list[dict[str, object]] = []
    real_load = np.load

    def spy_load(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        if kwargs.get("allow_pickle"):
            raise AssertionError("np.load called with allow_pickle=True")
        return real_load(*args, **kwargs)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("tinytorch reached an unpickler")

    monkeypatch.setattr(np, "load", spy_load)
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    return calls


def _npy_with_payload(marker: str) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _npz_with_payload(marker: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model.npy", _npy_with_payload(marker))
    return buf.getvalue()


@pytest.mark.parametrize("make", [_npy_with_payload, _npz_with_payload], ids=["npy", "npz"])
def test_pickle_hidden_in_numpy_files_is_refused_and_never_runs(
    tmp_path: Path, make, no_unpickling  # type: ignore[no-untyped-def]
) -> None:
    marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.ckpt"
    path.write_bytes(make(marker))
    with pytest.raises(CheckpointError):
        tt.load(path)
    assert not os.path.exists(marker)
    assert all(not c.get("allow_pickle") for c in no_unpickling)


def test_valid_checkpoint_loads_without_any_unpickler(tmp_path: Path, no_unpickling) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "good.safetensors"
    tt.save({"model": {"w": np.arange(6.0).reshape(2, 3)}, "epoch": 3}, path)
    state = tt.load(path)
    np.testing.assert_array_equal(np.asarray(state["model"]["w"]), np.arange(6.0).reshape(2, 3))
    assert state["epoch"] == 3
    assert all(not c.get("allow_pickle") for c in no_unpickling)
