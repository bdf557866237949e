#!/usr/bin/env python3
"""Summarise the runs of scripts/bench.sh into a markdown table and bench-results.json.

Usage (bench.sh calls it; python3 stdlib only):
  python3 scripts/bench_table.py --runs-dir DIR --out FILE.json [--meta KEY=VALUE ...]

DIR holds, for each run N of each implementation IMPL (ours | torch | ours-pP, ours
with GOMAXPROCS=P) at each sweep entry bBATCHeEPOCHS:
  bBATCHeEPOCHS_IMPL-N.log   the run's combined stdout+stderr: JSON lines and/or text; the
                             figures come from the last JSON object whose "msg" is "evaluation"
  bBATCHeEPOCHS_IMPL-N.time  the output of /usr/bin/time -v (peak RSS, wall clock)
  bBATCHeEPOCHS_IMPL-N.rc    the exit status (optional)
Prints the markdown report on stdout: the sweep (median training seconds per batch size,
ours / PyTorch, ours at each GOMAXPROCS) and the detail of the first sweep entry; writes
the raw runs and the medians to FILE.json.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import statistics
import sys

LABELS = {"ours": "ours (Gorgonia)", "torch": "PyTorch"}
RUN_NAME = re.compile(r"^b(\d+)e(\d+)_(ours|torch|ours-p\d+)-(\d+)\.log$")


def find_evaluation(path):
    """The last JSON line in path whose msg is "evaluation" (None if none).

    A run cut short (Ctrl-C, or a time limit's SIGTERM) evaluates too, with
    "interrupted": true; that is not a finished run's result, so it is skipped.
    """
    found = None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and obj.get("msg") == "evaluation" and not obj.get("interrupted"):
                    found = obj
    except FileNotFoundError:
        return None
    return found


def parse_time_v(path):
    """Peak RSS (kB) and wall seconds from /usr/bin/time -v output."""
    rss_kb, wall = None, None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return rss_kb, wall
    m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", text)
    if m:
        rss_kb = int(m.group(1))
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\):\s*([\d:.]+)", text)
    if m:
        secs = 0.0
        for part in m.group(1).split(":"):
            secs = secs * 60 + float(part)
        wall = secs
    return rss_kb, wall


def num(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def collect(runs_dir):
    runs = []
    for log in sorted(glob.glob(os.path.join(runs_dir, "*.log"))):
        m = RUN_NAME.match(os.path.basename(log))
        if not m:
            continue
        batch, epochs, impl, n = int(m.group(1)), int(m.group(2)), m.group(3), int(m.group(4))
        base = log[: -len(".log")]
        rc = None
        if os.path.exists(base + ".rc"):
            with open(base + ".rc") as f:
                try:
                    rc = int(f.read().strip())
                except ValueError:
                    pass
        ev = find_evaluation(log)
        rss_kb, wall = parse_time_v(base + ".time")
        run = {"batch_size": batch, "epochs": epochs, "impl": impl, "run": n, "exit_code": rc,
               "max_rss_kb": rss_kb, "wall_seconds": wall, "evaluation": ev}
        if ev is not None:
            ts = num(ev.get("train_seconds"))
            ep = num(ev.get("epochs"))
            run["train_seconds"] = ts
            run["seconds_per_epoch"] = ts / ep if ts is not None and ep else num(ev.get("seconds_per_epoch"))
            run["samples_per_second"] = num(ev.get("samples_per_second"))
            acc = num(ev.get("test_accuracy"))
            run["test_accuracy_pct"] = acc * 100 if acc is not None else None
            run["test_loss"] = num(ev.get("test_loss"))
        run["peak_rss_mib"] = rss_kb / 1024 if rss_kb is not None else None
        runs.append(run)
    return runs


METRICS = [
    # key, row label, format, ratio?
    ("train_seconds", "train time (s)", "{:.2f}", True),
    ("seconds_per_epoch", "s / epoch", "{:.2f}", True),
    ("samples_per_second", "samples / s", "{:,.0f}", False),
    ("peak_rss_mib", "peak RSS (MiB)", "{:.0f}", True),
    ("test_accuracy_pct", "test accuracy (%)", "{:.2f}", False),
    ("test_loss", "test loss", "{:.4f}", False),
]


def medians(runs, impl):
    ok = [r for r in runs if r["impl"] == impl and r.get("evaluation") is not None]
    out = {"runs": len(ok)}
    for key, *_ in METRICS:
        vals = [r[key] for r in ok if r.get(key) is not None]
        out[key] = statistics.median(vals) if vals else None
    out["train_seconds_all"] = [r["train_seconds"] for r in ok if r.get("train_seconds") is not None]
    devs = sorted({str(r["evaluation"].get("device")) for r in ok if r["evaluation"].get("device") is not None})
    out["device"] = ", ".join(devs) if devs else None
    return out


def proc_impls(runs):
    """The ours-pP implementations present, by P."""
    return sorted({r["impl"] for r in runs if r["impl"].startswith("ours-p")}, key=lambda s: int(s[len("ours-p"):]))


def machine_info():
    model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        ncpu = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        ncpu = os.cpu_count()
    mem_kb = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
                    break
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": ncpu,
        "cpu_model": model or platform.processor() or "unknown",
        "mem_total_gib": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds"),
    }


def fmt(fmtstr, v):
    return fmtstr.format(v) if v is not None else "n/a"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--meta", action="append", default=[], help="KEY=VALUE recorded in the JSON and the report")
    args = p.parse_args()

    meta = {}
    for kv in args.meta:
        k, _, v = kv.partition("=")
        meta[k] = v
    runs = collect(args.runs_dir)
    entries = []  # (batch, epochs) in the order of the sweep: by first appearance, batch ascending
    for r in sorted(runs, key=lambda r: (r["batch_size"], r["epochs"])):
        if (r["batch_size"], r["epochs"]) not in entries:
            entries.append((r["batch_size"], r["epochs"]))
    procs = proc_impls(runs)
    impls = ["ours", "torch"] + procs
    sweep = []
    for batch, epochs in entries:
        these = [r for r in runs if r["batch_size"] == batch and r["epochs"] == epochs]
        summary = {impl: medians(these, impl) for impl in impls}
        ratio = {}
        for key, _, _, want in METRICS:
            o, t = summary["ours"].get(key), summary["torch"].get(key)
            if want and o is not None and t:
                ratio[key] = o / t
        sweep.append({"batch_size": batch, "epochs": epochs, "median": summary, "ratio_ours_over_torch": ratio})
    machine = machine_info()

    torch_label = LABELS["torch"]
    tv = next((r["evaluation"].get("torch_version") for r in runs if r["impl"] == "torch" and r.get("evaluation")), None)
    if tv:
        torch_label += f" {tv}"

    lines = []
    lines.append(f"Machine: {machine['nproc']} CPUs ({machine['cpu_model']})"
                 + (f", {machine['mem_total_gib']} GiB RAM" if machine["mem_total_gib"] else "")
                 + f", Linux {machine['kernel']}; date {machine['date']}")
    extras = [f"{k}={v}" for k, v in meta.items() if v != ""]
    if extras:
        lines.append("Config: " + "; ".join(extras))
    rounds = max((s["median"]["ours"]["runs"] for s in sweep), default=0)
    lines.append(f"Medians over {rounds} round(s); in each, ours and PyTorch run alternately at every batch size.")
    lines.append("")
    head = "| batch | epochs | ours (s) | " + torch_label + " (s) | ours / PyTorch |"
    rule = "|---:|---:|---:|---:|---:|"
    for impl in procs:
        head += f" ours, GOMAXPROCS={impl[len('ours-p'):]} (s) |"
        rule += "---:|"
    head += " ours test loss | PyTorch test loss |"
    rule += "---:|---:|"
    lines += [head, rule]
    for s in sweep:
        med = s["median"]
        row = (f"| {s['batch_size']} | {s['epochs']} | {fmt('{:.2f}', med['ours']['train_seconds'])} | "
               f"{fmt('{:.2f}', med['torch']['train_seconds'])} | {fmt('{:.2f}', s['ratio_ours_over_torch'].get('train_seconds'))} |")
        for impl in procs:
            row += f" {fmt('{:.2f}', med[impl]['train_seconds'])} |"
        row += f" {fmt('{:.4f}', med['ours']['test_loss'])} | {fmt('{:.4f}', med['torch']['test_loss'])} |"
        lines.append(row)

    if sweep:
        first = sweep[0]
        ours, torch = first["median"]["ours"], first["median"]["torch"]
        ratio = first["ratio_ours_over_torch"]
        lines.append("")
        lines.append(f"Batch {first['batch_size']}, {first['epochs']} epoch(s):")
        lines.append("")
        lines.append(f"| | {LABELS['ours']} | {torch_label} | ours / PyTorch |")
        lines.append("|---|---:|---:|---:|")
        lines.append(f"| device | {ours['device'] or 'n/a'} | {torch['device'] or 'n/a'} | |")
        for key, label, f, want in METRICS:
            r = fmt("{:.2f}x", ratio.get(key)) if want else ""
            lines.append(f"| {label} | {fmt(f, ours.get(key))} | {fmt(f, torch.get(key))} | {r} |")
    print("\n".join(lines))

    failed = [r for r in runs if r.get("evaluation") is None]
    for r in failed:
        print(f"\nwarning: b{r['batch_size']}e{r['epochs']} {r['impl']} run {r['run']} has no evaluation entry "
              f"(exit code {r['exit_code']})", file=sys.stderr)

    result = {"machine": machine, "config": meta, "runs": runs, "sweep": sweep}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    if not any(s["median"]["ours"]["runs"] for s in sweep):
        sys.exit(1)


if __name__ == "__main__":
    main()
