"""Weights as NumPy arrays, by burn's parameter paths."""

import numpy as np
import pytest
import strata
from conftest import bits, etth1


def test_get_set_round_trips_bit_exactly(run_copy):
    w = run_copy.get_weights()
    assert w and all(a.dtype == np.float32 for a in w.values())
    # DLinear (individual = false): seasonal and trend Linear layers of seq_len -> pred_len.
    shapes = {k: v.shape for k, v in w.items()}
    assert any(s == (48, 12) for s in shapes.values()), shapes
    history = etth1(slice(9000, 9100))
    before = run_copy.predict(history)
    run_copy.set_weights(w)
    back = run_copy.get_weights()
    assert list(back) == list(w)
    for k in w:
        assert np.array_equal(bits(back[k]), bits(w[k])), k
    assert before.equals(run_copy.predict(history))


def test_set_weights_changes_the_forecast_by_hand(run_copy):
    """Zero weights and biases: DLinear's forecast is zero on the scaled axis, i.e. each
    column's training mean in the data's units."""
    w = {k: np.zeros_like(v) for k, v in run_copy.get_weights().items()}
    run_copy.set_weights(w)
    assert all(np.array_equal(bits(v), bits(np.zeros_like(v))) for v in run_copy.get_weights().values())
    f = run_copy.predict(etth1(slice(9000, 9100)))
    train = etth1(slice(0, 8640))  # ETTh1's 12 training months: the scaler's rows
    for col in ("HUFL", "OT"):
        assert np.allclose(f[col].to_numpy(), train[col].mean(), rtol=1e-4), col


def test_wrong_names_and_shapes_are_refused_with_the_key(run_copy):
    w = run_copy.get_weights()
    name = next(iter(w))
    with pytest.raises(strata.StrataError, match="strict=False"):
        run_copy.set_weights({k: v for k, v in w.items() if k != name})
    with pytest.raises(strata.StrataError, match=name.replace(".", r"\.")):
        run_copy.set_weights({**w, name: np.zeros((3, 3), np.float32)})
    with pytest.raises(strata.StrataError, match="unexpected"):
        run_copy.set_weights({**w, "no.such.tensor": np.zeros(1, np.float32)})
    # Not strict: a subset sets only those tensors.
    run_copy.set_weights({name: np.ones_like(w[name])}, strict=False)
    assert np.array_equal(run_copy.get_weights()[name], np.ones_like(w[name]))
    with pytest.raises(TypeError, match="dtype"):
        run_copy.set_weights({name: np.array(["a"] * w[name].size).reshape(w[name].shape)})
