"""The notebook-sized example runs (shortened: one short epoch)."""

import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_quickstart_example_runs(tmp_path):
    out = tmp_path / "quick"
    p = subprocess.run([sys.executable, str(REPO / "python" / "examples" / "quickstart.py"), "--epochs", "1", "--max-steps", "10", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "test: {'mse'" in p.stdout
    assert (out / "best.bpk").exists()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (out / "forecast.png").stat().st_size > 1000
