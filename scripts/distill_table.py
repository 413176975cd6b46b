#!/usr/bin/env python3
"""Tabulate scripts/distill_experiment.sh's results as Markdown (standard library only).

usage: python3 scripts/distill_table.py [runs/distill]
Per dataset and total ratio: each method's test MAE / RMSE / RAE / RRSE (mean +- std over the
seeds found); distillation time and peak memory, evaluation training time and peak memory of
the first seed (later seeds may have shared the machine);
then the full-data reference and the full / distilled ratios of training time (per epoch) and
memory.
"""
import json
import statistics
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/distill")
ORDER = ["random", "kcenter", "herding", "dc", "dm", "mtt", "condtsf", "stemdist"]


def ms(values, digits=3):
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


for ds in sorted(p for p in root.iterdir() if p.is_dir()):
    full = [json.loads(f.read_text()) for f in sorted(ds.glob("full_s*.json"))]
    for ratio in sorted((p for p in ds.iterdir() if p.is_dir()), key=lambda p: -float(p.name)):
        print(f"\n### {ds.name}, total ratio {ratio.name}%\n")
        print("| method | windows x locations | seeds | test MAE | RMSE | RAE | RRSE | distil s | distil peak MB | eval train s | eval s/epoch | eval peak MB |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        per_epoch = {}
        for method in ORDER:
            runs = []
            for d in sorted(ratio.glob(f"{method}_s*")):
                seed = d.name.rsplit("_s", 1)[1]
                ev, di = d / f"eval_s{seed}.json", d / "distilled.json"
                if ev.exists() and di.exists():
                    runs.append((json.loads(di.read_text()), json.loads(ev.read_text())))
            if not runs:
                continue
            t = lambda k: [e["test"][k] for _, e in runs]
            di0, ev0 = runs[0]
            per_epoch[method] = ev0["train_seconds"] / ev0["epochs"]
            print(
                f"| {method} | {di0['m']} x {di0['k']} | {len(runs)} | {ms(t('mae'))} | {ms(t('rmse'))} | {ms(t('rae'))} | {ms(t('rrse'))} "
                f"| {di0['distill_seconds']:.1f} | {di0['peak_rss_mb']:.0f} "
                f"| {ev0['train_seconds']:.1f} | {per_epoch[method]:.2f} | {ev0['peak_rss_mb']:.0f} |"
            )
        for f in full:
            fe = f["train_seconds"] / f["epochs"]
            t = f["test"]
            print(
                f"| full data ({f['epochs']} epochs, seed {f['seed']}) | {f['windows']} x {f['locations']} | 1 | {t['mae']:.3f} | {t['rmse']:.3f} | {t['rae']:.3f} | {t['rrse']:.3f} "
                f"| - | - | {f['train_seconds']:.1f} | {fe:.2f} | {f['peak_rss_mb']:.0f} |"
            )
            if "stemdist" in per_epoch:
                print(f"\nFull / STemDist: training time per epoch {fe / per_epoch['stemdist']:.1f}x.")
