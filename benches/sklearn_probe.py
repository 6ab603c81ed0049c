"""scikit-learn's LogisticRegression(lbfgs) on the features `mixco eval
--dump-features` wrote: the same protocol as mixco's probe (standardise;
L2 chosen on every 10th training sample from the same grid, C = 1/alpha;
refit on the whole training split), and scikit-learn's defaults (C = 1).

    .venv-bench/bin/python benches/sklearn_probe.py DIR cifar10 encoder.onnx --threads 2
"""
import argparse
import json
import os
import time

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("dataset")
p.add_argument("model")
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(a.threads))

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

load = lambda name: np.load(os.path.join(a.dir, name))
xtr, xte = load(f"{a.dataset}-{a.model}-train.npy"), load(f"{a.dataset}-{a.model}-test.npy")
ytr, yte = load(f"{a.dataset}-train-labels.npy"), load(f"{a.dataset}-test-labels.npy")


def fit(x, y, c):
    return LogisticRegression(C=c, max_iter=200).fit(x, y)


t = time.perf_counter()
sc = StandardScaler().fit(xtr)
xs, xts = sc.transform(xtr).astype(np.float64), sc.transform(xte).astype(np.float64)
held = np.arange(len(xs)) % 10 == 9
grid = []
for alpha in [1e-2, 1e-1, 1.0, 10.0]:
    m = fit(xs[~held], ytr[~held], 1.0 / alpha)
    grid.append((alpha, float((m.predict(xs[held]) == ytr[held]).mean())))
alpha = max(grid, key=lambda g: g[1])[0]
top1 = float((fit(xs, ytr, 1.0 / alpha).predict(xts) == yte).mean())
protocol_s = time.perf_counter() - t

t = time.perf_counter()
default_top1 = float((LogisticRegression().fit(xs, ytr).predict(xts) == yte).mean())
default_s = time.perf_counter() - t
print(json.dumps({"sklearn": sklearn.__version__, "features": list(xtr.shape), "grid": grid, "alpha": alpha,
                  "top1": top1, "seconds": protocol_s, "default_C1_top1": default_top1, "default_seconds": default_s}))
