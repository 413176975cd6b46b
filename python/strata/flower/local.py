"""Run a Flower app on this machine: a SuperLink, one SuperNode per site (each with its own
ports and ``partition-id``), then ``flwr run`` on the loopback federation. Every process is
stopped when the run ends, fails or times out.

    python -m strata.flower.local python/examples/flower --sites 2 \\
        --run-config "num-server-rounds=3 work-dir='runs/flower'"
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    """A Flower entry point beside this Python (pip puts them in the same bin folder)."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.time() + 10
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the SuperLink exited ({proc.returncode}): {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"the SuperLink did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def run_local(app: str | os.PathLike, sites: int, run_config: str = "", timeout: float = 600, logs: str | os.PathLike | None = None, node_config: str = "") -> subprocess.CompletedProcess:
    """Start the federation, run ``app`` on it (``flwr run --stream``), stop everything. Raises
    ``TimeoutError`` past ``timeout`` seconds and ``RuntimeError`` if the run fails."""
    logs = Path(logs or tempfile.mkdtemp(prefix="strata_flower_"))
    logs.mkdir(parents=True, exist_ok=True)
    # Flower 1.42 serves the Fleet, Control and runtime APIs over one HTTP port.
    link_port = free_port()
    env = {**os.environ, "FLWR_HOME": str(logs / "flwr_home")}
    procs: list[subprocess.Popen] = []

    def start(args: list[str], name: str) -> subprocess.Popen:
        f = open(logs / f"{name}.log", "w")
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        procs.append(p)
        return p

    try:
        link = start([_bin("flower-superlink"), "--insecure", "--disable-runtime-dependency-installation", "--host", "127.0.0.1", "--port", str(link_port)], "superlink")
        _wait_port(link_port, link, logs / "superlink.log", 60)
        for i in range(sites):
            cfg = f"partition-id={i} num-partitions={sites}" + (f" {node_config}" if node_config else "")
            start([_bin("flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{link_port}", "--port", str(free_port()), "--node-config", cfg], f"supernode-{i}")
        # The SuperLink connection, in this run's own Flower config (FLWR_HOME).
        (logs / "flwr_home").mkdir(exist_ok=True)
        (logs / "flwr_home" / "config.toml").write_text(f'[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = "127.0.0.1:{link_port}"\ninsecure = true\n')
        args = [_bin("flwr"), "run", str(app), "local", "--stream"]
        if run_config:
            args += ["--run-config", run_config]
        with open(logs / "flwr-run.log", "w") as f:
            run = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            procs.append(run)
            try:
                code = run.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"the federated run took over {timeout:.0f}s; logs in {logs}") from None
        out = (logs / "flwr-run.log").read_text()
        # `flwr run --stream` can exit 0 after the ServerApp failed: its log says so.
        if code != 0 or "ServerApp raised an exception" in out:
            raise RuntimeError(f"flwr run failed ({code}); logs in {logs}:\n{out[-3000:]}")
        return subprocess.CompletedProcess(args, code, out, "")
    finally:
        _stop(procs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("app")
    ap.add_argument("--sites", type=int, default=2)
    ap.add_argument("--run-config", default="")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--logs", default=None)
    a = ap.parse_args()
    r = run_local(a.app, a.sites, a.run_config, a.timeout, a.logs)
    print(r.stdout[-4000:])


if __name__ == "__main__":
    main()
