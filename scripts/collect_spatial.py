"""Prints the spatio-temporal table for RESULTS.md from runs/<dataset>_<model>[_eN]/results.json:
masked MAE / RMSE / MAPE (null 0, original scale) at horizons 3/6/12 and on average, with the
last-value and historical-average baselines scored on the same test windows."""
import glob, json, os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else "runs"
rows, baselines = [], {}
for f in sorted(glob.glob(os.path.join(root, "*", "results.json"))):
    name = os.path.basename(os.path.dirname(f))
    r = json.load(open(f))
    st = r.get("spatial")
    if not st or not re.fullmatch(r"[\w-]+_(\w+?)(_e\d+)?", name):
        continue
    ds = r["data"]["dataset"]
    baselines[ds] = st["baselines"]
    t = r["training"]
    rows.append((ds, r["model"]["name"], st["test"], t["epochs_run"], t["best_epoch"], t["train_seconds"], r["config"]["train"]["epochs"]))

def cells(ev):
    hs = {m["horizon"]: m for m in ev["horizons"]}
    out = []
    for h in (3, 6, 12):
        m = hs[h]
        out.append(f"{m['mae']:.3f} / {m['rmse']:.3f} / {100 * m['mape']:.2f}%")
    a = ev["average"]
    out.append(f"{a['mae']:.3f} / {a['rmse']:.3f} / {100 * a['mape']:.2f}%")
    return out

print("| dataset | model | horizon 3 (MAE / RMSE / MAPE) | horizon 6 | horizon 12 | average | epochs run (best) of budget | train time |")
print("|---|---|---|---|---|---|---|---|")
order = ["stid", "stgcn", "gwnet", "mtgnn", "stcnn", "convlstm"]
for ds in sorted(baselines):
    for name, key in (("last value", "last_value"), ("historical average", "historical_average")):
        print(f"| {ds} | *baseline: {name}* | " + " | ".join(cells(baselines[ds][key])) + " | - | - |")
    for d, m, ev, run, best, secs, budget in sorted((r for r in rows if r[0] == ds), key=lambda r: order.index(r[1]) if r[1] in order else 99):
        print(f"| {d} | {m} | " + " | ".join(cells(ev)) + f" | {run} ({best}) of {budget} | {secs / 60:.1f} min |")
