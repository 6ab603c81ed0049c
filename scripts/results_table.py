"""The CIFAR-10 table of docs/RESULTS.md: one row per setting, seeds pooled
(mean and, with two or more seeds, the sample standard deviation and the
spread max - min), plus each run's last-epoch losses; then the transfer
table (runs with a runs/first-point/transfer-RUN.json), and, for each MixCo
setting against its baseline, the seed-by-seed differences, a test of the
seed spreads (three or more seeds) and the transfer differences.

Rows come from the committed record docs/results/runs.jsonl (one line per
finished run, so the table outlives runs/, which is not kept) and from the
eval-*.json files of the runs folder; `--update SESSION` writes the runs
found there into the record (a run recorded with other numbers is replaced;
one recorded with the same numbers keeps its entry, session included, and
gains the transfer numbers found).

    python3 scripts/results_table.py [--update SESSION] [runs/first-point]
"""
import glob
import json
import os
import re
import sys
from statistics import correlation

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mixco_report import load_reports  # noqa: E402

args = sys.argv[1:]
session = None
if args[:1] == ["--update"]:
    session, args = args[1], args[2:]
out = args[0] if args else "runs/first-point"
record_path = "docs/results/runs.jsonl"
record = [json.loads(l) for l in open(record_path) if l.strip()] if os.path.exists(record_path) else []

def mean_sd(v):
    """Mean and sample standard deviation (None for one value)."""
    m = sum(v) / len(v)
    return m, (sum((x - m) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else None


def r2(v):
    return None if v is None else round(v, 2)


def top1(res):
    """Linear and kNN (k = 200) top-1 in percent of one model's result in a `mixco eval` report."""
    knn = dict(res["knn_top1"])
    return [round(100 * res["linear"]["top1"], 2), round(100 * knn.get(200, float("nan")), 2)]


walls = {}
if os.path.exists(f"{out}/wall-times.txt"):
    for line in open(f"{out}/wall-times.txt"):
        # "NAME: S s wall", or "NAME (resumed ...): S s wall" for the rest of a stopped run
        m = re.match(r"(\S+)(?: \([^)]*\))?: ([0-9.]+) s wall", line)
        if m:
            walls[m.group(1)] = walls.get(m.group(1), 0) + round(float(m.group(2)))

found = []
for path in sorted(glob.glob(f"{out}/eval-*.json")):
    run = os.path.basename(path)[len("eval-"):-len(".json")]
    setting, seed = run.rsplit("-seed", 1) if re.search(r"-seed\d+$", run) else (run, "0")
    linear, knn = top1(load_reports(path)[0]["results"][0])
    log = [json.loads(l) for l in open(f"{out}/{run}/log.jsonl") if l.strip()] if os.path.exists(f"{out}/{run}/log.jsonl") else []
    last = log[-1] if log else {}
    # Transfer linear / kNN top-1 from transfer-RUN.json, kept in the record too
    transfer = {}
    if os.path.exists(f"{out}/transfer-{run}.json"):
        for rep in load_reports(f"{out}/transfer-{run}.json"):
            if rep["dataset"] != "cifar10":
                transfer[rep["dataset"]] = top1(rep["results"][0])
    found.append({
        "setting": setting, "seed": int(seed), "linear": linear, "knn": knn, "loss": r2(last.get("loss_contrastive")),
        "mix": r2(last.get("loss_mix")), "wall_s": walls.get(run), "session": session or "unrecorded",
    })
    if transfer:
        found[-1]["transfer"] = transfer

key = lambda x: (x["setting"], x["seed"])
merged = {key(x): x for x in record}
same = lambda a, b: (a["linear"], a["knn"]) == (b["linear"], b["knn"])
for x in found:
    if key(x) in merged and same(merged[key(x)], x):
        if "transfer" in x:
            merged[key(x)]["transfer"] = x["transfer"]
    else:
        merged[key(x)] = x
if session is not None:
    tmp = record_path + ".tmp"
    with open(tmp, "w") as f:
        for x in sorted(merged.values(), key=key):
            f.write(json.dumps(x) + "\n")
    os.replace(tmp, record_path)

rows = {}
for x in merged.values():
    rows.setdefault(x["setting"], []).append(x)

print("| setting | seeds | linear top-1 | kNN top-1 (k=200) | last-epoch contrastive / MixCo loss |")
print("|---|---|---|---|---|")
for setting, rs in sorted(rows.items()):
    rs.sort(key=lambda x: x["seed"])
    def stat(k):
        v = [x[k] for x in rs]
        m, sd = mean_sd(v)
        if sd is None:
            return f"{m:.2f}"
        return f"{m:.2f} ± {sd:.2f} (spread {max(v) - min(v):.2f}: {', '.join(f'{x:.2f}' for x in v)})"
    losses = "; ".join(f"{x['loss']:.2f}" + (f" / {x['mix']:.2f}" if x["mix"] is not None else "") for x in rs if x["loss"] is not None)
    print(f"| {setting} | {', '.join(str(x['seed']) for x in rs)} | {stat('linear')} | {stat('knn')} | {losses} |")

# Transfer: the record's runs with transfer numbers (from `mixco eval RUN/encoder.onnx
# --transfer --json transfer-RUN.json`); other models of those reports (a random
# baseline) are printed once, after the runs, while their files are there.
run_name = lambda x: x["setting"] + (f"-seed{x['seed']}" if x["seed"] else "")
with_transfer = sorted((x for x in merged.values() if "transfer" in x), key=key)
baselines = {}
for path in sorted(glob.glob(f"{out}/transfer-*.json")):
    for rep in load_reports(path):
        for res in rep["results"][1:]:
            baselines.setdefault(res["model"], {}).setdefault(rep["dataset"], top1(res))
if with_transfer:
    print()
    print("| encoder | CIFAR-10 linear / kNN | CIFAR-100 sample linear / kNN | Tiny ImageNet sample linear / kNN |")
    print("|---|---|---|---|")
    cell = lambda v: f"{v[0]:.2f} / {v[1]:.2f}" if v else "-"
    for x in with_transfer:
        t = x["transfer"]
        print(f"| {run_name(x)} | {cell([x['linear'], x['knn']])} | {cell(t.get('cifar100'))} | {cell(t.get('tinyimagenet'))} |")
    for name, c in baselines.items():
        print(f"| {name} | {cell(c.get('cifar10'))} | {cell(c.get('cifar100'))} | {cell(c.get('tinyimagenet'))} |")

# Paired differences: the same seed gives both runs the same initial weights
# and data order, so seed-by-seed differences are the fairer comparison.
def t_two_sided_p(t, df):
    """P(|T| > |t|) for Student's t with df degrees of freedom (Simpson's rule)."""
    from math import exp, lgamma, pi, sqrt
    c = exp(lgamma((df + 1) / 2) - lgamma(df / 2)) / sqrt(df * pi)
    f = lambda x: c * (1 + x * x / df) ** (-(df + 1) / 2)
    n, a = 2000, abs(t)
    h = a / n
    area = f(0) + f(a) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, n))
    return max(0.0, 1 - 2 * area * h / 3)


def paired_t(d):
    """Mean difference and, for two or more, the paired t-test."""
    m, sd = mean_sd(d)
    if sd is None:
        return f"{m:+.2f}"
    if sd == 0:
        return f"{m:+.2f} (no spread)"
    t = m / (sd / len(d) ** 0.5)
    return f"{m:+.2f}, t {t:.2f} (df {len(d) - 1}), p {t_two_sided_p(t, len(d) - 1):.3f}"


def sign_flip_p(d):
    """Exact two-sided p of the sign-flip (permutation) test on paired differences.

    Under "no effect" each difference is as likely negative as positive, so
    the observed |mean| is ranked among all 2^n sign assignments. Needs no
    normality, unlike the t-test; with n pairs it cannot go below 2 / 2^n.
    """
    from itertools import product
    obs = abs(sum(d)) - 1e-9
    hits = sum(abs(sum(s * x for s, x in zip(signs, d))) >= obs for signs in product((1, -1), repeat=len(d)))
    return hits / 2 ** len(d)


def seeds_of(base_rows, run_rows):
    """The (baseline, MixCo) runs of each seed both have, by seed."""
    base = {x["seed"]: x for x in base_rows}
    run = {x["seed"]: x for x in run_rows}
    return [(base[s], run[s]) for s in sorted(run) if s in base]


# Each MixCo setting of experiments/first-point/ is compared with the setting
# whose own settings are its own without the MixCo ones. Settings that differ
# only in precision (bf16) are pooled as "A|B" when no seed ran in both of them.
def read_toml(path):
    """The `key = value` lines of a run file (tomllib where Python has it)."""
    try:
        import tomllib
        with open(path, "rb") as f:
            return tomllib.load(f)
    except ImportError:  # Python < 3.11: run files are flat `key = value` lines
        out = {}
        for line in open(path):
            line = line.split("#", 1)[0].strip()
            if "=" in line:
                k, v = (x.strip() for x in line.split("=", 1))
                out[k] = v.strip('"') if v.startswith('"') else {"true": True, "false": False}.get(v, v)
        return out


def sweep_settings(folder="experiments/first-point"):
    """{setting: {flag: value}} from each run's own file (True for a switch), as the flags that set them."""
    settings = {}
    for path in sorted(glob.glob(f"{folder}/*.toml")):
        name = os.path.basename(path)[:-len(".toml")]
        if name != "common":
            settings[name] = {"--" + k.replace("_", "-"): True if v is True else str(v) for k, v in read_toml(path).items()}
    return settings


def comparisons(settings):
    """(baseline spec, MixCo spec) for every MixCo setting with runs and a baseline with runs."""
    bare = lambda o, drop: tuple(sorted((k, v) for k, v in o.items() if not k.startswith(drop)))
    classes = {}
    for name, o in settings.items():
        if name in rows:
            classes.setdefault((bare(o, "--bf16"), "--mixco" in o), []).append(name)
    def specs(names):
        seeds = [x["seed"] for n in names for x in rows[n]]
        return ["|".join(sorted(names))] if len(seeds) == len(set(seeds)) else sorted(names)
    out = []
    for (key, mixco), runs in sorted(classes.items()):
        base = classes.get((bare(dict(key), "--mix"), False)) if mixco else None
        for r in specs(runs) if base else []:
            prec = lambda spec: {settings[n].get("--bf16") for n in spec.split("|")}
            out += [(b, r) for b in specs(base) if "|" in b + r or prec(b) == prec(r)]
    return sorted(out, key=lambda p: p[1])


pooled = lambda spec: [x for s in spec.split("|") for x in rows.get(s, [])]
# (baseline, MixCo setting, their runs paired by seed), for pairs sharing a seed
pairs = [(b, r, seeds_of(pooled(b), pooled(r))) for b, r in comparisons(sweep_settings())]
pairs = [p for p in pairs if p[2]]
label = lambda b, r: f"{r.replace('|', ' / ')} - {b.replace('|', ' / ')}"
if pairs:
    print()
    print("| MixCo run - baseline, same seeds | seeds | linear: differences | linear: mean, paired t, two-sided p | linear: sign-flip p (exact) | kNN: mean difference |")
    print("|---|---|---|---|---|---|")
    for b, r, sp in pairs:
        d = [y["linear"] - x["linear"] for x, y in sp]
        dk = [y["knn"] - x["knn"] for x, y in sp]
        print(f"| {label(b, r)} | {', '.join(str(x['seed']) for x, _ in sp)} | {', '.join(f'{x:+.2f}' for x in d)} | "
              f"{paired_t(d)} | {f'{sign_flip_p(d):.3f}' if len(d) > 1 else '-'} | {sum(dk) / len(dk):+.2f} |")

# Spread: is one setting's seed-to-seed spread smaller than the other's? With
# paired runs the Pitman-Morgan test: the variances are equal exactly when
# the sum and the difference of each pair are uncorrelated (t on n - 2 df).
spread = [p for p in pairs if len(p[2]) >= 3]
if spread:
    print()
    print("| MixCo run vs baseline, same seeds | seeds | linear sd: baseline, MixCo | correlation of the pair | Pitman-Morgan t, two-sided p |")
    print("|---|---|---|---|---|")
    for b, r, sp in spread:
        x = [p[0]["linear"] for p in sp]
        y = [p[1]["linear"] for p in sp]
        sums, gaps = [a + c for a, c in zip(x, y)], [c - a for a, c in zip(x, y)]
        if min(mean_sd(v)[1] for v in (x, y, sums, gaps)) == 0:
            continue
        rho = correlation(sums, gaps)
        t = rho * (len(sp) - 2) ** 0.5 / max(1e-12, 1 - rho * rho) ** 0.5
        print(f"| {label(b, r)} | {len(sp)} | {mean_sd(x)[1]:.2f}, {mean_sd(y)[1]:.2f} | {correlation(x, y):+.2f} | "
              f"{t:.2f} (df {len(sp) - 2}), p {t_two_sided_p(t, len(sp) - 2):.3f} |")

# Transfer, seed for seed: linear top-1 differences on the samples.
tpairs = [(b, r, [p for p in sp if "transfer" in p[0] and "transfer" in p[1]]) for b, r, sp in pairs]
tpairs = [p for p in tpairs if p[2]]
if tpairs:
    print()
    print("| MixCo run - baseline, same seeds | seeds | CIFAR-100 sample linear: differences; mean, paired t | Tiny ImageNet sample linear: differences; mean, paired t |")
    print("|---|---|---|---|")
    for b, r, sp in tpairs:
        def diffs(ds):
            d = [p[1]["transfer"][ds][0] - p[0]["transfer"][ds][0] for p in sp if ds in p[0]["transfer"] and ds in p[1]["transfer"]]
            return f"{', '.join(f'{x:+.2f}' for x in d)}; {paired_t(d)}" if d else "-"
        print(f"| {label(b, r)} | {', '.join(str(p[0]['seed']) for p in sp)} | {diffs('cifar100')} | {diffs('tinyimagenet')} |")
