"""The CIFAR-10 table of docs/RESULTS.md from runs/first-point/eval-*.json:
one row per setting, seeds pooled (mean and, with two or more seeds, the
spread max - min), plus each run's wall time and last-epoch losses.

    python3 scripts/results_table.py [runs/first-point]
"""
import glob
import json
import os
import re
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "runs/first-point"
walls = {}
if os.path.exists(f"{out}/wall-times.txt"):
    for line in open(f"{out}/wall-times.txt"):
        m = re.match(r"(\S+): ([\d.]+) s wall", line.strip())
        if m:
            walls[m.group(1)] = float(m.group(2))

rows = {}
for path in sorted(glob.glob(f"{out}/eval-*.json")):
    run = os.path.basename(path)[len("eval-"):-len(".json")]
    setting, seed = (run.rsplit("-seed", 1) + ["0"])[:2] if "-seed" in run else (run, "0")
    r = json.load(open(path))["results"][0]
    knn = dict((k, v) for k, v in r["knn_top1"])
    log = [json.loads(l) for l in open(f"{out}/{run}/log.jsonl") if l.strip()] if os.path.exists(f"{out}/{run}/log.jsonl") else []
    last = log[-1] if log else {}
    rows.setdefault(setting, []).append({
        "seed": int(seed), "linear": 100 * r["linear"]["top1"], "knn": 100 * knn.get(200, float("nan")),
        "wall": walls.get(run), "loss": last.get("loss_contrastive"), "mix": last.get("loss_mix"),
    })

print("| setting | seeds | linear top-1 | kNN top-1 (k=200) | last-epoch contrastive / MixCo loss |")
print("|---|---|---|---|---|")
for setting, rs in rows.items():
    rs.sort(key=lambda x: x["seed"])
    def stat(k):
        v = [x[k] for x in rs]
        m = sum(v) / len(v)
        return f"{m:.2f}" + (f" (spread {max(v) - min(v):.2f}: {', '.join(f'{x:.2f}' for x in v)})" if len(v) > 1 else "")
    losses = "; ".join(f"{x['loss']:.2f}" + (f" / {x['mix']:.2f}" if x["mix"] is not None else "") for x in rs if x["loss"] is not None)
    print(f"| {setting} | {', '.join(str(x['seed']) for x in rs)} | {stat('linear')} | {stat('knn')} | {losses} |")

# Transfer: runs/first-point/transfer-NAME.json from `mixco eval RUN/encoder.onnx --transfer --json ...`
transfers = sorted(glob.glob(f"{out}/transfer-*.json"))
if transfers:
    print()
    print("| encoder | CIFAR-10 linear / kNN | CIFAR-100 sample linear / kNN | Tiny ImageNet sample linear / kNN |")
    print("|---|---|---|---|")
    extra = {}
    for path in transfers:
        run = os.path.basename(path)[len("transfer-"):-len(".json")]
        reports = json.load(open(path))
        cells = {}
        for rep in reports:
            for i, res in enumerate(rep["results"]):
                name = run if i == 0 else res["model"]
                knn = dict((k, v) for k, v in res["knn_top1"])
                cells.setdefault(name, {})[rep["dataset"]] = f"{100 * res['linear']['top1']:.2f} / {100 * knn.get(200, float('nan')):.2f}"
        for name, c in cells.items():
            (extra if name != run else {}).setdefault(name, c)
            if name == run:
                print(f"| {name} | {c.get('cifar10', '-')} | {c.get('cifar100', '-')} | {c.get('tinyimagenet', '-')} |")
    for name, c in extra.items():
        print(f"| {name} | {c.get('cifar10', '-')} | {c.get('cifar100', '-')} | {c.get('tinyimagenet', '-')} |")
