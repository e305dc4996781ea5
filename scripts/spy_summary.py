"""Summarise a `py-spy record --format raw --threads` file: per thread, the leaf frames holding the
most samples (with --gil: who holds the GIL). Usage: python scripts/spy_summary.py FILE [TOP]"""

import sys
from collections import Counter, defaultdict

path, top = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 12
per_thread: dict[str, Counter[str]] = defaultdict(Counter)
with open(path) as f:
    for line in f:
        stack, _, n = line.rstrip().rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        per_thread[frames[0]][frames[-1]] += int(n)
total = sum(sum(c.values()) for c in per_thread.values())
for thread, c in sorted(per_thread.items(), key=lambda kv: -sum(kv[1].values())):
    n = sum(c.values())
    print(f"-- {thread}: {n} samples ({100 * n / max(total, 1):.0f}%)")
    for leaf, k in c.most_common(top):
        print(f"   {100 * k / n:5.1f}%  {leaf[:150]}")
