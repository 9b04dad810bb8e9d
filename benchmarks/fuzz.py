"""Long gradient-fuzzing run: the generator of ``tests/test_fuzz.py`` for many more graphs.

Every graph (1 to ``--max-steps`` ops over broadcastable float64 inputs) is checked
three ways: forward values against the same program in NumPy, every input's gradient of
``sum(out * w)`` against float64 central differences, and (every ``--hvp-every``-th
graph) a Hessian-vector product from ``autograd.grad(create_graph=True)`` against
central differences of first-order gradients. Failures do not stop the run: each is
printed with its op sequence, and the script exits with status 1 if there were any.
Failures explained by a known bug (``fuzz_graphs.KNOWN_BUGS``) are counted separately.
``--shrink`` then re-runs Hypothesis on the same seed to shrink the first failure to a
minimal graph with its input values.

Usage::

    python benchmarks/fuzz.py                    # 5,000 graphs, seed 0
    python benchmarks/fuzz.py --examples 20000 --seed 7
    python benchmarks/fuzz.py --examples 500 --shrink
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_graphs import (  # noqa: E402
    OP_NAMES,
    Graph,
    check_graph,
    check_hvp,
    graphs,
    known_bug,
)


def _checks(graph: Graph, index: int, hvp_every: int,
            known: Counter[str]) -> list[str]:
    """New problems; failures explained by a known bug are counted in ``known``."""
    problems = []
    for kind, check, due in (("grad", check_graph, True),
                             ("hvp", check_hvp, bool(hvp_every and index % hvp_every == 0))):
        if not due:
            continue
        found = check(graph)
        why = known_bug(graph, kind) if found else None
        if why:
            known[why] += 1
        else:
            problems += found
    return problems


def fuzz(examples: int, run_seed: int, max_steps: int, hvp_every: int,
         shrink: bool = False, show: int = 10) -> dict[str, Any]:
    """Run the fuzzer; return counts (and the failures) without raising."""
    stats: dict[str, Any] = {"graphs": 0, "ops": Counter(), "hvp": 0, "failures": [],
                             "known": Counter()}
    phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]

    @seed(run_seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=phases,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(graphs(max_steps=max_steps))
    def run(graph: Graph) -> None:
        index = stats["graphs"]
        stats["graphs"] += 1
        stats["ops"].update(graph.ops)
        stats["hvp"] += bool(hvp_every and index % hvp_every == 0)
        problems = _checks(graph, index, hvp_every, stats["known"])
        if problems:
            if shrink:
                raise AssertionError(graph.describe(values=True) + "\n" + "\n".join(problems))
            stats["failures"].append((graph, problems))
            if len(stats["failures"]) <= show:
                print(f"FAIL graph #{index}:\n{graph.describe()}\n  " + "\n  ".join(problems),
                      flush=True)

    run()
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=5000, help="graphs to check")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed")
    parser.add_argument("--max-steps", type=int, default=8, help="ops per graph at most")
    parser.add_argument("--hvp-every", type=int, default=2,
                        help="check a Hessian-vector product on every N-th graph (0: never)")
    parser.add_argument("--show", type=int, default=10, help="failures to print in full")
    parser.add_argument("--shrink", action="store_true",
                        help="after a failing run, shrink the first failure to a minimal graph")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    stats = fuzz(args.examples, args.seed, args.max_steps, args.hvp_every, show=args.show)
    elapsed = time.perf_counter() - start
    ops: Counter[str] = stats["ops"]
    failures = stats["failures"]

    print(f"\ngraphs checked: {stats['graphs']}  (seed {args.seed}, up to {args.max_steps} ops)")
    print(f"ops checked:    {sum(ops.values())}  ({len(ops)} of {len(OP_NAMES)} kinds)")
    print(f"HVP checks:     {stats['hvp']}")
    print(f"failures:       {len(failures)}")
    for why, count in stats["known"].items():
        print(f"known bug hit:  {count} graphs: {why}")
    print(f"time:           {elapsed:.1f} s ({1e3 * elapsed / max(stats['graphs'], 1):.1f} ms "
          f"per graph)")
    print("\nops per kind (a step that does not fit its op's domain becomes tanh):")
    width = max(len(op) for op in OP_NAMES)
    for op in sorted(OP_NAMES, key=lambda o: -ops[o]):
        print(f"  {op:<{width}}  {ops[op]:>7}")
    if failures:
        by_op: Counter[str] = Counter(op for graph, _ in failures for op in set(graph.ops))
        print("\nops present in failing graphs:", dict(by_op.most_common()))
        if args.shrink:
            print("\nthe first failure, shrunk to a minimal graph:")
            try:
                fuzz(args.examples, args.seed, args.max_steps, args.hvp_every, shrink=True)
            except AssertionError as exc:
                print(exc)
                print("\n".join(getattr(exc, "__notes__", [])))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
