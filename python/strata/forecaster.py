"""An estimator in neuralforecast's style, for people who start from a DataFrame rather than a
config: ``Forecaster("patchtst", h=96, input_size=336, freq="h").fit(df).predict()``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from . import _frames, _native
from .run import Run, train


class Forecaster:
    """One strata model on your data. ``model``: a model name (``dlinear``, ``patchtst``,
    ``itransformer``, ...; see docs/models.md); ``h``: the horizon; ``input_size``: the look-back;
    ``freq``: the data's step (``"h"``, ``"15min"``, ``"D"``: documentation only, the step is read
    from the timestamps); ``model_settings``: the model's ``[model]`` keys (``d_model=64``, ...).
    ``train`` holds ``[train]`` keys (``epochs``, ``batch_size``, ``lr``, ``patience``, ``seed``)."""

    def __init__(self, model: str, h: int, input_size: int, freq: str | None = None, *, train: dict | None = None, out=None, scale: bool = True, **model_settings):
        self.model, self.h, self.input_size, self.freq = model, int(h), int(input_size), freq
        self.train_settings = dict(train or {})
        self.model_settings = model_settings
        self.scale = scale
        self.out = out
        self.run: Run | None = None
        self._table = None
        self._tmp = None

    def __repr__(self) -> str:
        return f"Forecaster(model='{self.model}', h={self.h}, input_size={self.input_size}, freq={self.freq!r})"

    def config(self, data_path: str, target: str, val_size: int | None, test_size: int | None) -> dict:
        """The run config this estimator trains (a dict of TOML sections)."""
        data = {"dataset": "custom", "path": data_path, "target": target, "seq_len": self.input_size, "pred_len": self.h, "scale": self.scale}
        if val_size is not None or test_size is not None:
            data["val_size"], data["test_size"] = int(val_size or 0), int(test_size or 0)
        return {"name": f"forecaster_{self.model}", "data": data, "model": {"name": self.model, **self.model_settings}, "train": self.train_settings}

    def fit(self, df, val_size: int | None = None, test_size: int | None = None, fresh: bool = True) -> "Forecaster":
        """Train on ``df`` (long: ``unique_id``, ``ds``, ``y``; or wide: ``ds`` and one column per
        variable). The last ``test_size`` steps are the test split and the ``val_size`` before
        them validation (early stopping, best checkpoint); without them strata's 7:1:2 split."""
        table = _frames.read(df)
        if table.times is None:
            raise ValueError("fit: the frame needs a time column (ds or date)")
        if len(np.unique(table.times)) != len(table.times):
            raise ValueError("fit: the time column has repeated timestamps")
        self._table = table
        out = Path(self.out) if self.out is not None else Path(self._tempdir()) / "run"
        data_path = out.parent / f"{out.name}.data.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_csv(table, data_path)
        self.run = train(self.config(os.fspath(data_path), table.columns[-1], val_size, test_size), out=out, fresh=fresh)
        return self

    def predict(self, df=None, at: str | None = None):
        """Forecast ``h`` steps after the end of ``df`` (default: the frame given to :meth:`fit`),
        in the same layout (long or wide) and library as the input."""
        if self.run is None:
            raise ValueError("predict: call fit(df) first")
        if df is None:
            t = self._table
            return _frames.write(_native.predict(str(self.run.path), t.values, t.columns, t.times.tolist(), at), t)
        return self.run.predict(df, at=at)

    def _tempdir(self) -> str:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="strata_forecaster_")
        return self._tmp.name


def _write_csv(table: "_frames.Table", path: Path) -> None:
    """The table as the CSV strata's custom datasets read: ``date`` then one column per variable
    (empty cells for missing values). Written to a temporary file, then renamed."""
    dates = np.datetime_as_string(table.times.astype("datetime64[s]"), unit="s")
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        f.write(",".join(["date", *table.columns]) + "\n")
        for d, row in zip(dates, table.values):
            f.write(d.replace("T", " ") + "," + ",".join("" if np.isnan(v) else repr(float(v)) for v in row) + "\n")
    os.replace(tmp, path)
