"""Gathers what scripts/gpu-check.sh wrote into one Markdown summary.

    python3 scripts/gpu_summary.py OUT
"""
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main(out):
    card = open(os.path.join(out, "card.txt")).read().strip() if os.path.exists(os.path.join(out, "card.txt")) else "?"
    print("## GPU check\n\n```\n" + card + "\n```\n")
    print("| bench | pass | images/s | share of the bare passes |\n|---|---|---|---|")
    for name in sorted(os.listdir(out)):
        if not (name.startswith("bench-") and name.endswith(".json")):
            continue
        rows = load(os.path.join(out, name)) or []
        ips = {r["what"]: r["images_per_s"] for r in rows}
        for r in rows:
            method = r["what"].split(":")[0]
            bare = ips.get(method + ": forward/backward only")
            share = f"{r['images_per_s'] / bare:.2f}" if bare and "full step" in r["what"] else ""
            print(f"| {name[6:-5]} | {r['what']} | {r['images_per_s']:.0f} | {share} |")
    print()
    # the run folders are the ones with a training log (names set by gpu-check.sh)
    runs = sorted(d for d in os.listdir(out) if os.path.isfile(os.path.join(out, d, "log.jsonl")))
    logs = {}
    for d in runs:
        try:
            with open(os.path.join(out, d, "log.jsonl")) as f:
                logs[d] = [json.loads(l) for l in f if l.strip()]
        except (OSError, ValueError):
            logs[d] = []
    # compare at the last epoch every run reached
    common = min((max((r["epoch"] for r in rows), default=0) for rows in logs.values()), default=0)
    print(f"| run | epochs done | kNN monitor at epoch {common} | last contrastive / MixCo loss | last cos (collapse monitor) | train images/s | eval linear / kNN200 |")
    print("|---|---|---|---|---|---|---|")
    for d in runs:
        rows = logs[d]
        done = max((r["epoch"] for r in rows), default=0)
        at = next((r for r in rows if r["epoch"] == common), None)
        last = rows[-1] if rows else {}
        knn = f"{100 * at['knn_top1']:.2f}" if at and at.get("knn_top1") is not None else "-"
        lm = last.get("loss_mix")
        loss = f"{last.get('loss_contrastive') or 0:.3f}" + (f" / {lm:.3f}" if lm is not None else "")
        cos = f"{last['query_cosine']:.3f}" if last.get("query_cosine") is not None else "-"
        ips = [r["images_per_s"] for r in rows if r.get("images_per_s")]
        ev = load(os.path.join(out, f"eval-{d}.json"))
        evs = "-"
        if ev:
            res = ev["results"][0]
            k200 = dict(res["knn_top1"]).get(200)
            evs = f"{100 * res['linear']['top1']:.2f} / {100 * k200:.2f}" if k200 is not None else f"{100 * res['linear']['top1']:.2f}"
        print(f"| {d} | {done} | {knn} | {loss} | {cos} | {max(ips) if ips else 0:.0f} | {evs} |")
    if os.path.exists(os.path.join(out, "failures.txt")):
        print("\nfailures:\n```\n" + open(os.path.join(out, "failures.txt")).read() + "```")
    if os.path.exists(os.path.join(out, "wall-times.txt")):
        print("\n```\n" + open(os.path.join(out, "wall-times.txt")).read() + "```")


if __name__ == "__main__":
    main(sys.argv[1])
