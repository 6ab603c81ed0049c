"""The CIFAR-10 table of docs/RESULTS.md from runs/first-point/eval-*.json:
one row per setting, seeds pooled (mean and, with two or more seeds, the
spread max - min), plus each run's last-epoch losses; then the transfer
table from runs/first-point/transfer-*.json.

    python3 scripts/results_table.py [runs/first-point]
"""
import glob
import json
import os
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "runs/first-point"
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
        "loss": last.get("loss_contrastive"), "mix": last.get("loss_mix"),
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
    # The first model of each report is the run; later ones (a random
    # baseline) are printed once, after all runs.
    runs, baselines = {}, {}
    for path in transfers:
        run = os.path.basename(path)[len("transfer-"):-len(".json")]
        for rep in json.load(open(path)):
            for i, res in enumerate(rep["results"]):
                into, name = (runs, run) if i == 0 else (baselines, res["model"])
                knn = dict((k, v) for k, v in res["knn_top1"])
                cells = into.setdefault(name, {})
                cells.setdefault(rep["dataset"], f"{100 * res['linear']['top1']:.2f} / {100 * knn.get(200, float('nan')):.2f}")
    for name, c in list(runs.items()) + list(baselines.items()):
        print(f"| {name} | {c.get('cifar10', '-')} | {c.get('cifar100', '-')} | {c.get('tinyimagenet', '-')} |")
