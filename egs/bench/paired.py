"""Paired differences between methods of one `vae-audio bench` run.

    .venv/bin/python egs/bench/paired.py exp/bench/neural24/per_file.csv \
        neural-fastfca@200:fastmnmf2 neural-fastfca@200:pra-ilrma [--metric sdr]

Every mixture scored by both methods contributes the difference of their means over its
talkers; the table gives the mean difference, the half-width of its 95 % t-interval and how
many mixtures the first method wins. Pairing removes the mixture-to-mixture spread that
dominates the per-method intervals of the summary table.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict

from scipy import stats


def per_mixture(path: str, metric: str) -> dict[str, dict[str, float]]:
    """``{method: {mixture id: mean of metric over its talkers}}`` from a per_file.csv."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            values[(row["method"], row["id"])].append(float(row[metric]))
    table: dict[str, dict[str, float]] = defaultdict(dict)
    for (method, mix), v in values.items():
        table[method][mix] = statistics.fmean(v)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("per_file", help="per_file.csv written by `vae-audio bench`")
    parser.add_argument("pairs", nargs="+", metavar="A:B", help="method pairs, A minus B")
    parser.add_argument("--metric", default="sdr", help="score column (default sdr)")
    args = parser.parse_args()
    table = per_mixture(args.per_file, args.metric)
    print(f"| {args.metric}: A − B (dB) | mean ± 95 % | A better |")
    print("|---|---|---|")
    for pair in args.pairs:
        a, _, b = pair.partition(":")
        missing = [m for m in (a, b) if m not in table]
        if missing:
            raise SystemExit(f"method(s) {missing} not in {args.per_file}; have {sorted(table)}")
        ids = sorted(set(table[a]) & set(table[b]))
        d = [table[a][i] - table[b][i] for i in ids]
        n = len(d)
        half = stats.t.ppf(0.975, n - 1) * statistics.stdev(d) / n**0.5 if n > 1 else float("nan")
        wins = sum(x > 0 for x in d)
        print(f"| {a} − {b} | {statistics.fmean(d):+.2f} ± {half:.2f} | {wins}/{n} |")


if __name__ == "__main__":
    main()
