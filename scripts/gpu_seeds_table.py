#!/usr/bin/env python3
"""Print the markdown tables of scripts/gpu-host-run.sh's timed runs, seeds
step and batches step from their logs, each ending with the JSON
"evaluation" line of `train-cuda -log-format json` or `torch_mnist.py --json`:

  gpu_seeds_table.py DIR            DIR/seed-IMPL-N.log: test accuracy and
                                    test loss per seed and implementation
                                    (IMPL torch_MODE), and their means; no
                                    times: these runs share the GPU with
                                    the tests
  gpu_seeds_table.py --runs DIR     DIR/train-ENGINE.log, DIR/torch.log and
                                    DIR/torch-MODE.log, the timed runs of
                                    the default flags: train seconds,
                                    samples/s, test accuracy and loss, and
                                    each engine's speed against each
                                    PyTorch configuration (empty in
                                    PyTorch's own rows)
  gpu_seeds_table.py --batches DIR  DIR/batch-IMPL-SIZE.log: samples per
                                    second per batch size and implementation,
                                    and the fastest of ours against the
                                    fastest PyTorch configuration

Each mode exits with status 1, after its table, when a run left no
evaluation line (shown as "failed"), so that a step whose runs failed does
not pass.
"""
import glob
import os
import re
import statistics
import sys

from bench_table import find_evaluation  # the JSON "evaluation" line of a run


def batches_table(directory):
    runs = {}  # impl -> batch size -> evaluation
    for path in glob.glob(os.path.join(directory, "batch-*-*.log")):
        m = re.fullmatch(r"batch-(.+)-(\d+)\.log", os.path.basename(path))
        if m:
            runs.setdefault(m.group(1), {})[int(m.group(2))] = find_evaluation(path)
    if not runs:
        sys.exit("no batch-IMPL-SIZE.log files in " + directory)
    impls = sorted(runs)
    sizes = sorted({b for r in runs.values() for b in r})
    print("| batch | " + " | ".join(f"{i} samples/s" for i in impls) + " | ours / best PyTorch |")
    print("|---:|" + "---:|" * (len(impls) + 1))
    for b in sizes:
        cells, ours, torch_best = [], 0.0, 0.0
        for i in impls:
            e = runs[i].get(b)
            sps = e.get("samples_per_second") if e else None
            cells.append(f"{sps:,.0f}" if sps else ("failed" if b in runs[i] else "-"))
            if sps and i.startswith("torch"):
                torch_best = max(torch_best, sps)
            elif sps:
                ours = max(ours, sps)
        ratio = f"{ours / torch_best:.2f}x" if ours and torch_best else "-"
        print(f"| {b} | " + " | ".join(cells) + f" | {ratio} |")
    return any(e is None for r in runs.values() for e in r.values())


def runs_table(directory):
    """The speed table of the timed runs; True if one left no result."""
    runs = {}  # name -> evaluation
    for path in glob.glob(os.path.join(directory, "train-*.log")) + glob.glob(os.path.join(directory, "torch*.log")):
        name = os.path.basename(path)[: -len(".log")]
        if name == "torch":
            name = "torch-eager"
        runs[name] = find_evaluation(path)
    if not runs:
        sys.exit("no train-ENGINE.log or torch*.log files in " + directory)
    refs = sorted(n for n in runs if n.startswith("torch") and runs[n] and runs[n].get("train_seconds"))
    header = ["run", "train s", "samples/s", "test acc %", "test loss"] + [f"× faster than {r}" for r in refs]
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for name in sorted(runs, key=lambda n: (n.startswith("torch"), n)):
        e = runs[name]
        if not e:
            print("| " + " | ".join([name, "failed"] + [""] * (len(header) - 2)) + " |")
            continue
        secs = e.get("train_seconds")
        cells = [
            f"{secs:.2f}" if secs else "-",
            f"{e['samples_per_second']:,.0f}" if e.get("samples_per_second") else "-",
            f"{e['test_accuracy'] * 100:.2f}" if "test_accuracy" in e else "-",
            f"{e['test_loss']:.4f}" if "test_loss" in e else "-",
        ]
        # How many times faster than each PyTorch configuration (its
        # seconds over ours): above 1, ours is faster. The columns compare
        # our engines with PyTorch, so PyTorch's own rows leave them empty.
        if name.startswith("torch"):
            cells += [""] * len(refs)
        else:
            cells += [f"{runs[r]['train_seconds'] / secs:.2f}x" if secs else "-" for r in refs]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return any(e is None for e in runs.values())


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--batches":
        sys.exit(1 if batches_table(sys.argv[2]) else 0)
    if len(sys.argv) == 3 and sys.argv[1] == "--runs":
        sys.exit(1 if runs_table(sys.argv[2]) else 0)
    if len(sys.argv) != 2:
        sys.exit("usage: gpu_seeds_table.py [--batches|--runs] DIR")
    runs = {}  # impl -> seed -> evaluation
    for path in glob.glob(os.path.join(sys.argv[1], "seed-*-*.log")):
        m = re.fullmatch(r"seed-(.+)-(\d+)\.log", os.path.basename(path))
        if m:
            runs.setdefault(m.group(1), {})[int(m.group(2))] = find_evaluation(path)
    if not runs:
        sys.exit("no seed-IMPL-N.log files in " + sys.argv[1])
    impls = sorted(runs)
    seeds = sorted({s for r in runs.values() for s in r})
    print("| seed | " + " | ".join(f"{i} acc % | {i} loss" for i in impls) + " |")
    print("|---:|" + "---:|---:|" * len(impls))

    def cell(e, key, scale, fmt):
        return format(e[key] * scale, fmt) if e and key in e else "failed"

    for s in seeds:
        cells = []
        for i in impls:
            e = runs[i].get(s)
            cells += [cell(e, "test_accuracy", 100, ".2f"), cell(e, "test_loss", 1, ".4f")]
        print(f"| {s} | " + " | ".join(cells) + " |")
    means = []
    for i in impls:
        ok = [e for e in runs[i].values() if e]
        for key, scale, fmt in (("test_accuracy", 100, ".2f"), ("test_loss", 1, ".4f")):
            vals = [e[key] * scale for e in ok if key in e]
            means.append(format(statistics.mean(vals), fmt) if vals else "-")
    print("| **mean** | " + " | ".join(means) + " |")
    if any(e is None for r in runs.values() for e in r.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
