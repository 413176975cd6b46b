"""strata: spatio-temporal and time-series forecasting with a Rust core.

    import strata
    run = strata.train("configs/etth1_dlinear.toml", overrides={"train.epochs": 2})
    run.evaluate("test")                       # {'mse': ..., 'mae': ...}
    forecast = run.predict(df)                 # a DataFrame in the data's units
    weights = run.get_weights()                # {'DLinear.seasonal.weight': ndarray, ...}

    fc = strata.Forecaster("dlinear", h=24, input_size=96).fit(df, val_size=500, test_size=500)
    fc.predict()

Long calls release the GIL; Ctrl-C stops training at the next step (the last epoch's checkpoint
stays, and training the same folder again resumes). Errors are ``StrataError`` (a
``ValueError``), ``FileNotFoundError`` or ``TypeError`` with the CLI's one-line message.
"""

from ._native import StrataError
from ._native import version as _core_version
from .forecaster import Forecaster
from .run import Run, datasets, distill, finetune, inspect, online, train, zero_shot

__version__ = _core_version()

__all__ = ["Forecaster", "Run", "StrataError", "datasets", "distill", "finetune", "inspect", "online", "train", "zero_shot", "__version__"]
