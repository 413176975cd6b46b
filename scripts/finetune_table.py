#!/usr/bin/env python3
"""Tabulate scripts/finetune_experiment.sh's results as Markdown (standard library only).

usage: python3 scripts/finetune_table.py [runs]
One table per dataset and backbone (folders ft_<dataset>_<backbone>_<method>_s<seed>): each
method's trainable parameters, seconds per training step (mean over seeds), best validation
loss, test MSE and MAE (mean +- sample std over the seeds found) and the per-seed MSE; the
zero-shot row comes from ft_<dataset>_<backbone>_zero-shot.json.
"""
import json
import re
import statistics
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs")
ORDER = ["full", "linear-probe", "prompt", "lora", "adalora", "msft"]
RUN = re.compile(r"ft_(?P<ds>[a-z0-9]+)_(?P<bb>ttm|moirai)_(?P<m>.+)_s(?P<seed>\d+)$")


def ms(values, digits=4):
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


groups = {}
for d in sorted(root.glob("ft_*_s*")):
    m = RUN.match(d.name)
    if m and (d / "results.json").exists():
        r = json.loads((d / "results.json").read_text())
        groups.setdefault((m["ds"], m["bb"]), {}).setdefault(m["m"], []).append((int(m["seed"]), r))

for (ds, bb), methods in sorted(groups.items()):
    print(f"\n### {bb} on {ds}\n")
    print("| method | seeds | trainable / total | s/step | val loss | test MSE | test MAE | per-seed MSE |")
    print("|---|---|---|---|---|---|---|---|")
    zs = root / f"ft_{ds}_{bb}_zero-shot.json"
    if zs.exists():
        z = json.loads(zs.read_text())
        print(f"| zero-shot | - | 0 | - | - | {z['mse']:.4f} | {z['mae']:.4f} | - |")
    names = [m for m in ORDER if m in methods] + sorted(m for m in methods if m not in ORDER)
    for name in names:
        runs = sorted(methods[name], key=lambda t: t[0])
        rs = [r for _, r in runs]
        r0 = rs[0]
        share = f"{r0['trainable']:,} / {r0['parameters']:,} ({100 * r0['trainable_share']:.2f}%)"
        step = statistics.mean(r["seconds_per_step"] for r in rs)
        print(
            f"| {name} | {len(rs)} | {share} | {step:.2f} | {ms([r['val_loss'] for r in rs])} "
            f"| {ms([r['test_mse'] for r in rs])} | {ms([r['test_mae'] for r in rs])} "
            f"| {', '.join('%.4f' % r['test_mse'] for r in rs)} |"
        )
