#!/usr/bin/env python3
"""Print a markdown table of test accuracy, test loss and training seconds
per seed and implementation, from the logs of scripts/gpu-host-run.sh's
seeds step: DIR/seed-IMPL-N.log, each ending with the JSON "evaluation"
line of `train-cuda -log-format json` or `torch_mnist.py --json`.

Usage: scripts/gpu_seeds_table.py DIR
"""
import glob
import json
import os
import re
import statistics
import sys


def evaluation(path):
    """The last JSON line of path that has a test accuracy, or None."""
    found = None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if "test_accuracy" in obj:
                found = obj
    return found


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gpu_seeds_table.py DIR")
    runs = {}  # impl -> seed -> evaluation
    for path in glob.glob(os.path.join(sys.argv[1], "seed-*-*.log")):
        m = re.fullmatch(r"seed-(.+)-(\d+)\.log", os.path.basename(path))
        if m:
            runs.setdefault(m.group(1), {})[int(m.group(2))] = evaluation(path)
    if not runs:
        sys.exit("no seed-IMPL-N.log files in " + sys.argv[1])
    impls = sorted(runs)
    seeds = sorted({s for r in runs.values() for s in r})
    head = "| seed | " + " | ".join(f"{i} acc % | {i} loss | {i} train s" for i in impls) + " |"
    print(head)
    print("|---:|" + "---:|---:|---:|" * len(impls))

    def cell(e, key, scale, fmt):
        return format(e[key] * scale, fmt) if e and key in e else "failed"

    for s in seeds:
        cells = []
        for i in impls:
            e = runs[i].get(s)
            cells += [cell(e, "test_accuracy", 100, ".2f"), cell(e, "test_loss", 1, ".4f"), cell(e, "train_seconds", 1, ".2f")]
        print(f"| {s} | " + " | ".join(cells) + " |")
    means = []
    for i in impls:
        ok = [e for e in runs[i].values() if e]
        for key, scale, fmt in (("test_accuracy", 100, ".2f"), ("test_loss", 1, ".4f"), ("train_seconds", 1, ".2f")):
            vals = [e[key] * scale for e in ok if key in e]
            means.append(format(statistics.mean(vals), fmt) if vals else "-")
    print("| **mean** | " + " | ".join(means) + " |")

    def mean_seconds(impl):
        vals = [e["train_seconds"] for e in runs.get(impl, {}).values() if e and "train_seconds" in e]
        return statistics.mean(vals) if vals else None

    ref = mean_seconds("torch")
    if ref:
        print()
        for i in impls:
            m = mean_seconds(i)
            if i != "torch" and m:
                print(f"{i}: mean train time {m:.2f} s, {ref / m:.1f}x faster than PyTorch eager ({ref:.2f} s)")


if __name__ == "__main__":
    main()
