"""DataFrames in and out: pandas, polars, a dict of arrays or a 2-D NumPy array become the
float32 table the Rust core reads; forecasts go back in the caller's kind of frame.

A *wide* frame has a time column (``ds`` or ``date``, optional) and one numeric column per
variable. A *long* frame (neuralforecast's layout) has ``unique_id``, ``ds`` and ``y``; each
``unique_id`` becomes one column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIME_COLUMNS = ("ds", "date")
LONG_COLUMNS = ("unique_id", "ds", "y")


@dataclass
class Table:
    values: np.ndarray  # float32 [rows, columns], NaN = missing
    columns: list[str]
    times: np.ndarray | None  # int64 seconds since 1970 (UTC), one per row
    kind: str  # "pandas", "polars" or "numpy": what the caller gave
    long: bool  # the caller's frame was long (unique_id, ds, y)


def _kind(df) -> str:
    module = type(df).__module__
    if module.startswith("pandas"):
        return "pandas"
    if module.startswith("polars"):
        return "polars"
    return "numpy"


def _columns(df) -> dict[str, np.ndarray]:
    """The frame as name -> NumPy array, whatever its library."""
    kind = _kind(df)
    if kind in ("pandas", "polars"):
        return {str(c): np.asarray(df[c].to_numpy()) for c in df.columns}
    if isinstance(df, dict):
        return {str(k): np.asarray(v) for k, v in df.items()}
    raise TypeError(f"expected a pandas or polars DataFrame, a dict of arrays or a 2-D NumPy array; got {type(df).__name__}")


def _seconds(name: str, col: np.ndarray) -> np.ndarray:
    """Timestamps as int64 seconds since 1970 (timezone-aware values as UTC)."""
    if col.dtype.kind == "M":
        return col.astype("datetime64[s]").astype(np.int64)
    if col.dtype.kind in "OU":
        try:
            return np.array([np.datetime64(str(v), "s") for v in col]).astype(np.int64)
        except ValueError as e:
            raise TypeError(f"column '{name}': timestamps expected (datetime64 or ISO strings such as 2016-07-01 00:00:00); {e}") from None
    raise TypeError(f"column '{name}' has dtype {col.dtype}; timestamps expected (datetime64 or ISO strings)")


def _numeric(name: str, col: np.ndarray) -> np.ndarray:
    if col.dtype.kind not in "fiub":
        raise TypeError(f"column '{name}' has dtype {col.dtype}; numbers expected (float or int)")
    return col.astype(np.float32)


def read(df) -> Table:
    """Read a frame (or a 2-D array) into a :class:`Table`."""
    kind = _kind(df)
    if isinstance(df, np.ndarray):
        if df.ndim != 2:
            raise ValueError(f"input: an array of shape {df.shape}; expected [rows, columns] in the model's column order")
        return Table(_numeric("values", df), [], None, "numpy", False)
    cols = _columns(df)
    if all(c in cols for c in LONG_COLUMNS):
        return _read_long(cols, kind)
    time = next((c for c in TIME_COLUMNS if c in cols), None)
    names = [c for c in cols if c != time]
    if not names:
        raise ValueError(f"input: no value columns beside the time column; columns: {list(cols)}")
    values = np.stack([_numeric(c, cols[c]) for c in names], axis=1)
    times = _seconds(time, cols[time]) if time else None
    return Table(np.ascontiguousarray(values), names, times, kind, False)


def _read_long(cols: dict[str, np.ndarray], kind: str) -> Table:
    ids = cols["unique_id"].astype(str)
    ts = _seconds("ds", cols["ds"])
    y = _numeric("y", cols["y"])
    names = list(dict.fromkeys(ids))  # first-appearance order
    times = np.unique(ts)
    grid = np.full((len(times), len(names)), np.nan, dtype=np.float32)
    col = {n: j for j, n in enumerate(names)}
    rows = np.searchsorted(times, ts)
    cells = rows * len(names) + np.array([col[i] for i in ids], dtype=np.int64)
    seen, first, count = np.unique(cells, return_index=True, return_counts=True)
    if (count > 1).any():
        k = first[np.argmax(count > 1)]
        raise ValueError(f"input: unique_id '{ids[k]}' has more than one row at ds {np.datetime64(int(ts[k]), 's')}; give one value per series and time")
    grid.reshape(-1)[cells] = y
    # Other numeric columns (covariates) as `<series>:<column>`, as strata reads long tables.
    extra = [c for c in cols if c not in LONG_COLUMNS and cols[c].dtype.kind in "fiub"]
    blocks, columns = [grid], list(names)
    for c in extra:
        block = np.full((len(times), len(names)), np.nan, dtype=np.float32)
        block.reshape(-1)[cells] = cols[c].astype(np.float32)
        blocks.append(block)
        columns += [f"{n}:{c}" for n in names]
    return Table(np.ascontiguousarray(np.concatenate(blocks, axis=1)), columns, times, kind, True)


def write(forecast: dict, table: Table):
    """A forecast (from ``_native.predict``) as the caller's kind of frame: wide (``ds`` and one
    column per variable, plus ``<column>-lo-80`` / ``-median`` / ``-hi-80`` quantile columns) or,
    for a long input, long (``unique_id``, ``ds``, ``<Model>`` and ``<Model>-lo-80`` ...)."""
    values, columns = forecast["values"], forecast["columns"]
    ds = None if forecast["timestamps"] is None else np.array(forecast["timestamps"], dtype="datetime64[s]").astype("datetime64[ns]")
    bands = [(_level_name(level), q) for level, q in forecast["quantiles"]]
    if table.long:
        h, c = values.shape
        model = forecast["model"]
        out = {"unique_id": np.repeat(np.array(columns, dtype=object), h)}
        if ds is not None:
            out["ds"] = np.tile(ds, c)
        out[model] = values.T.reshape(-1)
        for name, q in bands:
            out[f"{model}-{name}"] = q.T.reshape(-1)
    else:
        out = {} if ds is None else {"ds": ds}
        for j, name in enumerate(columns):
            out[name] = values[:, j]
            for band, q in bands:
                out[f"{name}-{band}"] = q[:, j]
    return frame(out, table.kind)


def frame(columns: dict[str, np.ndarray], kind: str):
    """Columns as a pandas or polars DataFrame (``kind``), else the dict itself."""
    if kind == "pandas":
        import pandas as pd

        return pd.DataFrame(columns)
    if kind == "polars":
        import polars as pl

        return pl.DataFrame({k: (v.astype(str) if v.dtype == object else v) for k, v in columns.items()})
    return columns


def _level_name(level: float) -> str:
    """0.1 -> lo-80, 0.5 -> median, 0.9 -> hi-80 (neuralforecast's names for a central interval)."""
    if abs(level - 0.5) < 1e-9:
        return "median"
    width = round(abs(2 * level - 1) * 100)
    return f"lo-{width}" if level < 0.5 else f"hi-{width}"
