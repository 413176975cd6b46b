"""Projected data-parallel scaling from a measured one-process step and a ring all-reduce model.

    python3 bench/projection.py NAME PARAMS STEP_MS THREADS GLOBAL_BATCH [NAME ...]

Strong scaling (the global batch fixed, split across N single-core ranks):
  compute(N)   = STEP_MS x THREADS / N        (the measured step, spread over N cores; ideal)
  allreduce(N) = 2 (N-1)/N x bytes / bandwidth + 2 (N-1) x latency     (ring: reduce-scatter +
                 all-gather of every fp32 gradient, one message per hop, as strata's one flat
                 all-reduce per parameter group)
  step(N)      = compute(N) + allreduce(N)                  (strata: after the backward pass)
  overlapped   = compute(N) + max(0, allreduce(N) - 2/3 compute(N))   (DDP-style buckets
                 all-reduced while the backward pass, ~2/3 of a step, goes on)
A configuration is possible while every rank holds at least one window (N <= GLOBAL_BATCH).
Speed-up is against one core (STEP_MS x THREADS). Beyond that, weak scaling: every rank keeps
the share it has at 8 ranks (GLOBAL_BATCH / 8, at least 1) and the global batch grows with N;
efficiency = compute / (compute + exposed all-reduce).
"""
import sys

NETWORKS = [("10 GbE", 1.25e9, 25e-6), ("HDR InfiniBand", 25e9, 2e-6)]
RANKS = [8, 64, 512]


def project(name, params, step_ms, threads, batch):
    one_core = step_ms * threads / 1e3
    rows = []
    for net, bw, lat in NETWORKS:
        for n in RANKS:
            ar = 2 * (n - 1) / n * params * 4 / bw + 2 * (n - 1) * lat
            if n > batch:
                share = max(1, batch // 8)
                comp = one_core * share / batch
                plain, over = comp + ar, comp + max(0.0, ar - 2 / 3 * comp)
                rows.append(f"| {name} | {net} | {n} (weak: {share} per rank, batch {share * n}) | {1e3 * comp:.2f} | {1e3 * ar:.2f} | {100 * comp / plain:.0f}% | {100 * comp / over:.0f}% |")
                continue
            comp = one_core / n
            plain, over = comp + ar, comp + max(0.0, ar - 2 / 3 * comp)
            rows.append(f"| {name} | {net} | {n} | {1e3 * comp:.2f} | {1e3 * ar:.2f} | {one_core / plain:.1f} ({100 * one_core / plain / n:.0f}%) | {one_core / over:.1f} ({100 * one_core / over / n:.0f}%) |")
    return rows


args = sys.argv[1:]
print("| model | network | ranks | compute ms/step | all-reduce ms | speed-up (efficiency), all-reduce after backward | with overlap |")
print("|---|---|---|---|---|---|---|")
while args:
    name, params, step_ms, threads, batch = args[:5]
    args = args[5:]
    print("\n".join(project(name, int(params), float(step_ms), int(threads), int(batch))))
