"""Prints RESULTS.md's per-seed table of a probabilistic model from its runs' results.json.

    python3 scripts/prob_seeds.py 'runs/etth1_transformer_normal_kaiming_s*' [paper_mse paper_mae]

One row a run (seed order), then mean +- std (sample std over seeds) and, given the paper's
MSE/MAE, the mean's and each seed's distance from it."""
import glob, json, statistics, sys

runs = [json.load(open(f)) for f in glob.glob(sys.argv[1] + "/results.json")]  # finished runs
if not runs:
    sys.exit(f"no runs match {sys.argv[1]}")
runs.sort(key=lambda r: r["seed"])


def ms(xs, fmt):
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):{fmt}} ± {sd:{fmt}}"


print("| seed | best epoch / run | val NLL by epoch | val MSE | test MSE | test MAE | CRPS | MSIS "
      "| 50 / 90 / 95% coverage |")
print("|---|---|---|---|---|---|---|---|---|")
cols = {k: [] for k in ["val", "mse", "mae", "crps", "msis", "c50", "c90", "c95"]}
for r in runs:
    t, p = r["training"], r["probabilistic"]
    nll = ", ".join(f"{h['val_loss']:.2f}" for h in t["history"])
    cov = p["interval_coverage"]
    vals = [r["val"]["mse"], r["test"]["mse"], r["test"]["mae"], p["crps"], p["msis"], *cov]
    for k, v in zip(cols, vals):
        cols[k].append(v)
    print(f"| {r['seed']} | {t['best_epoch']} / {t['epochs_run']} | {nll} | {vals[0]:.4f} "
          f"| {vals[1]:.4f} | {vals[2]:.4f} | {vals[3]:.3f} | {vals[4]:.2f} "
          f"| {cov[0]:.2f} / {cov[1]:.2f} / {cov[2]:.2f} |")
cov = " / ".join(f"{statistics.mean(cols[k]):.2f}" for k in ["c50", "c90", "c95"])
print(f"| **mean ± std** ({len(runs)} seeds) | | | {statistics.mean(cols['val']):.3f} "
      f"| **{ms(cols['mse'], '.4f')}** | {ms(cols['mae'], '.4f')} | {ms(cols['crps'], '.3f')} "
      f"| {ms(cols['msis'], '.2f')} | {cov} |")
if len(sys.argv) > 3:
    pm, pa = float(sys.argv[2]), float(sys.argv[3])
    pct = lambda x, ref: f"{100 * (x / ref - 1):+.1f}%"
    seeds = ", ".join(pct(x, pm)[:-1] for x in cols["mse"])
    sem = statistics.stdev(cols["mse"]) / len(runs) ** 0.5 if len(runs) > 1 else 0.0
    print(f"| vs paper {pm} / {pa} | | | | **{pct(statistics.mean(cols['mse']), pm)}** "
          f"(seeds {seeds}%; standard error of the mean {100 * sem / pm:.1f}%) "
          f"| {pct(statistics.mean(cols['mae']), pa)} | | | |")
