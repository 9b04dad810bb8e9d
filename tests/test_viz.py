"""tinytorch.viz: graph statistics, DOT text (parsed here), pictures through Graphviz,
inline display, and the ``tinytorch graph`` command."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import nn, viz
from tinytorch.utils.checkpoint import checkpoint

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz 'dot' is not installed")

# ------------------------------------------------------------------ a small DOT parser

_ID = r"[A-Za-z_][A-Za-z0-9_]*"
_STRING = r'"(?:[^"\\]|\\.)*"'
_VALUE = rf"(?:{_STRING}|[A-Za-z0-9_.#]+)"
_ATTR = rf"{_ID}\s*=\s*{_VALUE}"
_ATTRS = rf"\[\s*{_ATTR}(?:\s*,\s*{_ATTR})*\s*\]"
HEAD = re.compile(rf"^digraph\s+{_ID}\s*\{{$")
DEFAULTS = re.compile(rf"^(graph|node|edge)\s*{_ATTRS};$")
NODE = re.compile(rf"^({_ID})\s*({_ATTRS});$")
EDGE = re.compile(rf"^({_ID})\s*->\s*({_ID});$")
ATTR = re.compile(rf"({_ID})\s*=\s*({_VALUE})")


def _unquote(v):
    if v.startswith('"'):
        return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v[1:-1])
    return v


def parse_dot(text):
    """{node id: attrs}, [(tail, head)]; raises AssertionError on anything malformed."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    assert HEAD.match(lines[0]), lines[0]
    assert lines[-1] == "}", lines[-1]
    assert text.count("{") == text.count("}")
    nodes, edges = {}, []
    for ln in lines[1:-1]:
        if DEFAULTS.match(ln):
            continue
        m = NODE.match(ln)
        if m:
            assert m.group(1) not in nodes, f"node {m.group(1)} declared twice"
            nodes[m.group(1)] = {k: _unquote(v) for k, v in ATTR.findall(m.group(2))}
            continue
        m = EDGE.match(ln)
        assert m, f"not a DOT statement: {ln!r}"
        edges.append((m.group(1), m.group(2)))
    for a, b in edges:
        assert a in nodes and b in nodes, f"edge {a} -> {b} to an undeclared node"
    return nodes, edges


def _is_acyclic(nodes, edges):
    indeg = dict.fromkeys(nodes, 0)
    out = {n: [] for n in nodes}
    for a, b in edges:
        indeg[b] += 1
        out[a].append(b)
    ready = [n for n, d in indeg.items() if d == 0]
    seen = 0
    while ready:
        n = ready.pop()
        seen += 1
        for m in out[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    return seen == len(nodes)


# ------------------------------------------------------------------ fixtures


def _model_and_loss():
    tt.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    x = tt.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    y = tt.tensor(np.array([0, 1, 2, 1, 0]))
    return model, nn.CrossEntropyLoss()(model(x), y)


# ------------------------------------------------------------------ graph_stats


def test_graph_stats_counts_a_known_graph():
    a = tt.tensor(np.ones(3, np.float32), requires_grad=True)
    b = tt.tensor(np.ones(3, np.float32), requires_grad=True)
    y = (tt.exp(a) * b).sum()
    s = viz.graph_stats(y)
    assert s["nodes"] == 3 and s["leaves"] == 2 and s["depth"] == 3
    assert s["ops"] == {"SumBackward": 1, "MulBackward": 1, "ExpBackward": 1}
    assert s["edges"] == 4  # sum<-mul, mul<-exp, mul<-b, exp<-a
    # exp keeps its output, mul keeps b and exp's output (shared with exp): 2 arrays
    assert s["saved_bytes"] == 2 * 12
    assert sum(s["saved_bytes_by_op"].values()) == s["saved_bytes"]
    y.backward()
    assert viz.graph_stats(y)["saved_bytes"] == 0  # released after backward


def test_graph_stats_of_a_long_chain_needs_no_recursion():
    x = tt.tensor([0.5], requires_grad=True)
    h = x
    for _ in range(20_000):
        h = h * 1.0
    s = viz.graph_stats(h)
    assert s["nodes"] == s["depth"] == 20_000 and s["leaves"] == 1
    assert viz.to_dot(h).count("->") == 20_001  # the chain, the leaf and the output


def test_graph_stats_of_a_model_graph():
    model, loss = _model_and_loss()
    s = viz.graph_stats(loss)
    assert s["leaves"] == 4  # two weights and two biases
    assert s["ops"]["MatmulBackward"] == 2 and s["ops"]["TanhBackward"] == 1
    assert s["saved_bytes"] > 0 and s["depth"] == 6


# ------------------------------------------------------------------ DOT


def test_dot_is_well_formed_and_names_ops_shapes_and_parameters():
    model, loss = _model_and_loss()
    nodes, edges = parse_dot(viz.to_dot(loss, module=model))
    labels = [n["label"].split("\n") for n in nodes.values()]
    firsts = [lab[0] for lab in labels]
    for op in ("CrossEntropyBackward", "AddBackward", "MatmulBackward", "TanhBackward"):
        assert op in firsts
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
        assert firsts.count(name) == 1
    assert "output" in firsts
    assert ["MatmulBackward", "(5, 8) float32"] in labels
    assert ["0.weight", "(4, 8) float32"] in labels
    assert _is_acyclic(nodes, edges)
    # every op node has an input and a consumer; leaves only feed, the output only receives
    tails, heads = {a for a, _ in edges}, {b for _, b in edges}
    for nid, attrs in nodes.items():
        kind = nid[0]
        assert (nid in tails) == (kind in "nl") and (nid in heads) == (kind in "no"), attrs
    assert len(edges) == viz.graph_stats(loss)["edges"] + 1  # + the edge to the output


def test_dot_names_parameters_from_a_params_dict_and_escapes_labels():
    w = tt.tensor([1.0, 2.0], requires_grad=True)
    nodes, _ = parse_dot(viz.to_dot((w * w).sum(), params={'weird "name" \\ here': w}))
    assert any(n["label"].startswith('weird "name" \\ here\n') for n in nodes.values())
    unnamed, _ = parse_dot(viz.to_dot((w * w).sum()))
    assert any(n["label"].startswith("leaf\n(2,) float32") for n in unnamed.values())


def test_dot_of_several_outputs_and_of_a_checkpointed_graph():
    x = tt.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    y = checkpoint(lambda t: tt.tanh(t) * 2, x)
    nodes, edges = parse_dot(viz.to_dot([y.sum(), tt.exp(x).mean()], show_saved=True))
    firsts = [n["label"].split("\n")[0] for n in nodes.values()]
    assert firsts.count("output") == 2 and "CheckpointBackward" in firsts
    assert any(ln.startswith("saved 24 B") for n in nodes.values()
               for ln in n["label"].split("\n"))


def test_viz_rejects_non_tensors():
    with pytest.raises(TypeError, match="expected a Tensor"):
        viz.to_dot(np.ones(3))


# ------------------------------------------------------------------ pictures


@needs_dot
@pytest.mark.parametrize("fmt, magic", [("svg", b"<svg"), ("png", b"\x89PNG\r\n\x1a\n")])
def test_draw_renders_through_graphviz(tmp_path, fmt, magic):
    model, loss = _model_and_loss()
    path = viz.draw(loss, tmp_path / f"g.{fmt}", module=model)
    with open(path, "rb") as f:
        data = f.read()
    assert magic in data[:400]
    if fmt == "svg":
        assert b"MatmulBackward" in data and b"0.weight" in data


def test_draw_dot_needs_nothing_and_missing_graphviz_is_explained(tmp_path, monkeypatch):
    _, loss = _model_and_loss()
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on this PATH
    out = viz.draw(loss, tmp_path / "g.dot")
    with open(out) as f:
        parse_dot(f.read())
    with pytest.raises(viz.GraphvizNotFoundError, match="apt-get install graphviz"):
        viz.draw(loss, tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()
    g = viz.graph(loss)
    assert g._repr_svg_() is None
    assert g._repr_mimebundle_() == {"text/plain": g.source}
    with pytest.raises(ValueError, match="format must be one of"):
        viz.draw(loss, tmp_path / "g.jpg")


@needs_dot
def test_graph_displays_inline_as_svg():
    model, loss = _model_and_loss()
    g = viz.graph(loss, module=model)
    bundle = g._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"] and bundle["text/plain"] == g.source
    assert g._repr_svg_().count("<svg") == 1
    assert str(g) == viz.to_dot(loss, module=model)


# ------------------------------------------------------------------ CLI

CMD = [sys.executable, "-m", "tinytorch.cli"]
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def test_cli_graph_writes_dot_and_pictures(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "mlp.dot"
    res = subprocess.run([*CMD, "graph", "--format", "dot", "--out", str(out)],
                         capture_output=True, text=True, timeout=120, env=ENV)
    assert res.returncode == 0, res.stderr
    assert "op nodes" in res.stdout and "depth" in res.stdout
    nodes, _ = parse_dot(out.read_text())
    firsts = {n["label"].split("\n")[0] for n in nodes.values()}
    assert {"2.weight", "5.weight", "8.weight", "MatmulBackward", "CrossEntropyBackward"} <= firsts
    if HAVE_DOT:
        svg = tmp_path / "mlp.svg"
        res = subprocess.run([*CMD, "graph", "--out", str(svg)], capture_output=True,
                             text=True, timeout=120, env=ENV)
        assert res.returncode == 0, res.stderr
        assert b"<svg" in svg.read_bytes()[:400]
    res = subprocess.run([*CMD, "graph", "--out", str(tmp_path / "x.svg")], capture_output=True,
                         text=True, timeout=120, env={**ENV, "PATH": str(tmp_path)})
    assert res.returncode == 2 and "apt-get install graphviz" in res.stderr
