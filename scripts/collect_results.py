"""Prints the LSF reproduction tables for RESULTS.md from runs/*/results.json.
Runs named <config>, <config>_s<seed> are grouped by config (mean +- std over seeds)."""
import glob, json, os, re, statistics, sys

PAPER = {  # (model, dataset, horizon) -> (MSE, MAE); DLinear: Zeng et al. 2023 Table 2, input 336;
           # PatchTST/42: Nie et al. 2023 Table 3.
    ("dlinear", "etth1"): {96: (0.375, 0.399), 192: (0.405, 0.416), 336: (0.439, 0.443), 720: (0.472, 0.490)},
    ("dlinear", "ettm1"): {96: (0.299, 0.343), 192: (0.335, 0.365), 336: (0.369, 0.386), 720: (0.425, 0.421)},
    ("patchtst", "etth1"): {96: (0.375, 0.399), 192: (0.414, 0.421), 336: (0.431, 0.436), 720: (0.449, 0.466)},
    ("patchtst", "ettm1"): {96: (0.290, 0.342), 192: (0.332, 0.369), 336: (0.366, 0.392), 720: (0.420, 0.424)},
    # iTransformer: Liu et al. 2024, input 96.
    ("itransformer", "etth1"): {96: (0.386, 0.405)},
    # TimeMixer: Wang et al. 2024, input 96.
    ("timemixer", "etth1"): {96: (0.375, 0.400)},
}
root = sys.argv[1] if len(sys.argv) > 1 else "runs"
groups = {}
for f in sorted(glob.glob(os.path.join(root, "*", "results.json"))):
    name = os.path.basename(os.path.dirname(f))
    m = re.fullmatch(r"(\w+?_(dlinear|patchtst|itransformer|timemixer)_\d+_\d+)(_s\d+|_e\d+)?", name)
    if not m:
        continue
    r = json.load(open(f))
    ev = os.path.join(os.path.dirname(f), "eval.json")  # `strata eval` adds the drop_last view to older runs
    if not r.get("test_drop_last") and os.path.exists(ev):
        r["test_drop_last"] = json.load(open(ev)).get("test_drop_last")
    groups.setdefault((m.group(1), m.group(3) or ""), []).append(r)

rows = []
for (cfg, suffix), rs in sorted(groups.items()):
    if suffix.startswith("_s"):
        continue
    seeds = rs + [r for (c, s), more in groups.items() if c == cfg and s.startswith("_s") for r in more]
    r0 = rs[0]
    key = (r0["model"]["name"], r0["data"]["dataset"])
    h = r0["config"]["data"]["pred_len"]
    mses = [r["test"]["mse"] for r in seeds]
    dl = [r["test_drop_last"]["mse"] for r in seeds if r.get("test_drop_last")]
    maes = [r["test"]["mae"] for r in seeds]
    pm, pa = PAPER[key][h]
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    mean_mse = statistics.mean(mses)
    rows.append((key[0], key[1], h, suffix, len(seeds), mean_mse, sd(mses), statistics.mean(maes), sd(maes), pm, pa,
                 100 * (mean_mse - pm) / pm, mses, r0["training"]["epochs_run"], r0["data"]["windows"][2],
                 statistics.mean(dl) if len(dl) == len(seeds) else None))

print("| model | dataset | horizon | seeds | test MSE (mean ± std) | test MAE | paper MSE | paper MAE | MSE vs paper | MSE with the papers' drop_last | per-seed MSE | test windows |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for m, d, h, suf, n, mse, smse, mae, smae, pm, pa, diff, mses, ep, win, dl in sorted(rows, key=lambda r: (r[0], r[1], r[2])):
    note = f" ({suf[2:]} epochs)" if suf.startswith("_e") else ""
    print(f"| {m}{note} | {d} | {h} | {n} | {mse:.4f} ± {smse:.4f} | {mae:.4f} ± {smae:.4f} | {pm:.3f} | {pa:.3f} | {diff:+.1f}% | "
          f"{'-' if dl is None else f'{dl:.4f}'} | {', '.join(f'{v:.4f}' for v in mses)} | {win} |")
