"""Runs: train one from a config, open one from its folder, forecast, score, train on, and move
its weights in and out as NumPy arrays. A run is its folder, as for the CLI."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import _frames, _native


def _overrides(overrides) -> list[str]:
    """``{"train.epochs": 2}`` or ``["train.epochs=2"]`` -> ``key=value`` strings (TOML values)."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    return [str(o) for o in overrides]


def _config(config) -> tuple[str | None, str | None]:
    """A config given as a TOML path or a dict of sections: ``(path, json text)``, one of them set."""
    if isinstance(config, Mapping):
        return None, json.dumps(_drop_none(config))
    if isinstance(config, (str, os.PathLike)):
        return os.fspath(config), None
    raise TypeError(f"config: a TOML path or a dict expected; got {type(config).__name__}")


def _drop_none(d):
    if isinstance(d, Mapping):
        return {str(k): _drop_none(v) for k, v in d.items() if v is not None}
    if isinstance(d, (list, tuple)):
        return [_drop_none(v) for v in d]
    if isinstance(d, os.PathLike):
        return os.fspath(d)
    return d


class Run:
    """A trained (or training) run folder: ``config.toml``, ``best.bpk``, ``results.json`` ..."""

    def __init__(self, path: str | os.PathLike, results: dict | None = None):
        self.path = Path(path)
        self._results = results

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Run":
        """Open a run folder that `strata train` (or :func:`train`) wrote."""
        path = Path(path)
        if not (path / "config.toml").exists():
            raise FileNotFoundError(f"{path} is not a run folder (no config.toml); train one with strata.train or `strata train`")
        return cls(path)

    def __repr__(self) -> str:
        return f"Run('{self.path}')"

    @property
    def results(self) -> dict:
        """The run's ``results.json``: config, data SHA-256, seed, training record, metrics."""
        if self._results is None:
            self._results = json.loads((self.path / "results.json").read_text())
        return self._results

    def predict(self, df, at: str | None = None):
        """Forecast the next ``pred_len`` steps after the history in ``df`` (or after ``at``, a
        timestamp of it), in the data's units. ``df``: a wide or long pandas/polars DataFrame, a
        dict of arrays, or a 2-D array in the model's column order. Probabilistic models add
        ``-lo-80`` / ``-median`` / ``-hi-80`` columns."""
        table = _frames.read(df)
        columns = table.columns or None
        times = None if table.times is None else table.times.tolist()
        forecast = _native.predict(str(self.path), table.values, columns, times, at)
        return _frames.write(forecast, table)

    def evaluate(self, split: str = "test") -> dict:
        """Score the best checkpoint again on ``split``: ``"val"``, ``"test"``, or
        ``"test_original_scale"``; returns its metrics (``mse``, ``mae``, ...)."""
        results = json.loads(_native.evaluate(str(self.path)))
        if split not in ("val", "test", "test_original_scale", "test_drop_last"):
            raise ValueError(f"split '{split}': expected 'val', 'test', 'test_original_scale' or 'test_drop_last'")
        if results.get(split) is None:
            raise ValueError(f"{self.path} has no '{split}' scores")
        return results[split]

    def fit(self, epochs: int = 1, proximal_mu: float | None = None) -> "Run":
        """Train ``epochs`` more epochs from the last checkpoint (early stopping counts again).
        ``proximal_mu`` (FedProx) adds ``mu/2 * ||w - w0||^2`` to the loss, ``w0`` the weights
        this call starts from; it becomes the run's ``train.proximal_mu``."""
        self._results = json.loads(_native.fit_more(str(self.path), int(epochs), proximal_mu))
        return self

    def get_weights(self, checkpoint: str = "best") -> dict[str, np.ndarray]:
        """The model's tensors by burn parameter path (BatchNorm statistics included), float32:
        of the best checkpoint (what :meth:`predict` uses) or of the ``"last"`` epoch."""
        return _native.get_weights(str(self.path), checkpoint)

    def set_weights(self, weights: Mapping[str, Any], strict: bool = True) -> None:
        """Make ``weights`` (name -> array) the run's model: its best checkpoint and the point
        :meth:`fit` continues from. ``strict=False`` leaves tensors not given unchanged and
        ignores unknown names; a wrong shape is always an error."""
        arrays = []
        for name, value in weights.items():
            a = np.asarray(value)
            if a.dtype.kind not in "fiu":
                raise TypeError(f"weights['{name}'] has dtype {a.dtype}; numbers expected (float32)")
            arrays.append((str(name), np.ascontiguousarray(a, dtype=np.float32)))
        _native.set_weights(str(self.path), arrays, strict)

    def save(self, path: str | os.PathLike) -> "Run":
        """Copy the run folder to ``path`` (a new folder); returns the copy."""
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path} exists; choose a new folder")
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent if path.parent.exists() else None))
        shutil.rmtree(tmp)
        shutil.copytree(self.path, tmp)
        os.replace(tmp, path)
        return Run(path)


def train(config, out: str | os.PathLike | None = None, overrides=None, fresh: bool = False) -> Run:
    """Train (or resume) a forecasting run. ``config``: a TOML path or a dict of sections
    (``{"data": {...}, "model": {...}, "train": {...}}``); ``overrides``: ``{"train.lr": 1e-3}``
    or ``["train.lr=1e-3"]``; ``out``: the run folder (default ``runs/<name>``)."""
    path, text = _config(config)
    folder, results = _native.train(path, text, _overrides(overrides), None if out is None else os.fspath(out), fresh)
    return Run(folder, json.loads(results))


def online(config, out: str | os.PathLike | None = None, overrides=None, fresh: bool = False) -> dict:
    """Online forecasting (``strata online``): train (or load ``online.from``) a warm-up, then walk
    the test split one window a step, forecasting, revealing the truth and updating by the
    ``online`` section's strategy (``none``, ``ogd``, ``er``, ``derpp``, ``retrain``), with an
    optional drift detector. ``config`` and ``overrides`` as :func:`train`; returns online.json
    (cumulative ``mse``/``mae``, ``drift_steps``, ``retrain_steps``, ...) with ``folder`` added;
    the per-step curve is ``<folder>/online/online_curve.csv``."""
    path, text = _config(config)
    folder, results = _native.online(path, text, _overrides(overrides), None if out is None else os.fspath(out), fresh)
    return {**json.loads(results), "folder": folder}


def _command(argv: list[str]) -> None:
    _native.command([str(a) for a in argv])


def _flags(options: Mapping[str, Any]) -> list[str]:
    argv = []
    for k, v in options.items():
        if v is not None:
            argv += [f"--{k.replace('_', '-')}", os.fspath(v) if isinstance(v, os.PathLike) else str(v)]
    return argv


def zero_shot(model, dataset: str, horizon: int = 96, out=None, **options) -> dict:
    """Evaluate a pretrained TinyTimeMixer or MOIRAI checkpoint folder on a dataset's test split
    without training; ``options``: ``path``, ``batch_size``, ``context``, ``patch_size``."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(out) if out is not None else Path(tmp) / "zero_shot.json"
        _command(["zero-shot", "--model", model, "--dataset", dataset, "--horizon", horizon, "--out", target, *_flags(options)])
        return json.loads(target.read_text())


def finetune(model, dataset: str | None = None, method: str | None = None, config=None, out=None, overrides=None, fresh: bool = False) -> dict:
    """Fine-tune a foundation model checkpoint (full, linear-probe, prompt, lora, adalora, msft);
    returns the run's ``results.json``."""
    if out is None:
        out = Path("runs") / "_".join(str(p) for p in (Path(model).name, method, dataset) if p)
    argv = ["finetune", *_flags({"method": method, "model": model, "dataset": dataset, "config": config, "out": out})]
    argv += [a for o in _overrides(overrides) for a in ("--set", o)]
    if fresh:
        argv.append("--fresh")
    _command(argv)
    return json.loads((Path(out) / "results.json").read_text())


def distill(dataset: str, out, method: str = "stemdist", config=None, overrides=None) -> dict:
    """Distil a spatio-temporal dataset into ``out`` (x.npy, y.npy, distilled.json); returns
    ``distilled.json``."""
    argv = ["distill", *_flags({"config": config, "dataset": dataset, "method": method, "out": out})]
    argv += [a for o in _overrides(overrides) for a in ("--set", o)]
    _command(argv)
    return json.loads((Path(out) / "distilled.json").read_text())


def inspect(path, **settings) -> str:
    """What strata would read from a data file or folder with these `[data]` settings (`time`,
    `categorical`, `drop`, `target`, ...): columns and types, the time axis, gaps, duplicates,
    text values, nodes, the graph, and the first problem it would refuse. Nothing is trained."""
    sets = [f"{key}={json.dumps(value)}" for key, value in settings.items()]
    return _native.inspect(os.fspath(path), sets)


def datasets() -> list[dict]:
    """The datasets strata knows: name, kind, file, frequency and whether it is on disk."""
    return json.loads(_native.datasets())
