"""Allocation benchmark: 10,000 papers, k = 3, everyone submitted (the planner alone).

Run: .venv/bin/python bench/allocation_bench.py   (or `make bench`)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.allocation import PaperRef, plan, reciprocal_pairs

QUICK = "--quick" in sys.argv  # tiny sizes, seconds: run by the tests
N, K, ROUNDS = (300, 3, 2) if QUICK else (10_000, 3, 5)


def main() -> None:
    pool = list(range(1, N + 1))
    papers = [PaperRef(paper=100_000 + a, author=a) for a in pool]
    timings = []
    for round_ in range(ROUNDS):
        started = time.perf_counter()
        result = plan(papers, pool, k=K, seed=f"bench-{round_}")
        timings.append(time.perf_counter() - started)
    loads = Counter(r for _, r in result.create)
    author = {p.paper: p.author for p in papers}
    print(
        f"allocation: {N:,} papers, k={K}: median {statistics.median(timings) * 1000:.0f} ms, "
        f"best {min(timings) * 1000:.0f} ms over {ROUNDS} runs; "
        f"{len(result.create):,} tasks, loads {min(loads.values())}-{max(loads.values())}, "
        f"reciprocal pairs {len(reciprocal_pairs(result.create, author))}"
    )


if __name__ == "__main__":
    main()
