"""A real Ray cluster on 127.0.0.1 (a head and two worker nodes, one CPU each) running a recipe's steps."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
# the interpreter running the tests, not the `ray` script: a copied venv keeps the shebang of the one it came from
RAY = [sys.executable, "-m", "ray.scripts.scripts"]
WORKERS = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_nodes(address: str, count: int, timeout_s: float = 90) -> None:
    """Until ``count`` nodes are alive, asked by one driver that joins once (each join costs seconds)."""
    code = (
        f"import ray, time; ray.init(address={address!r}, logging_level='ERROR', log_to_driver=False)\n"
        f"deadline = time.monotonic() + {timeout_s}\n"
        f"while sum(n['Alive'] for n in ray.nodes()) < {count} and time.monotonic() < deadline: time.sleep(0.2)\n"
        "print('ALIVE', sum(n['Alive'] for n in ray.nodes()))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=timeout_s + 60)
    # Ray may print its own lines (deduplicated logs) after ours: find ours by its word
    alive = next((line.split()[1] for line in done.stdout.splitlines() if line.startswith("ALIVE ")), "0")
    problem = f"the {count}-node cluster did not come up: {done.stderr[-2000:]}"
    assert done.returncode == 0 and int(alive) == count, problem


@pytest.fixture
def loopback_cluster():
    """A head and two worker nodes on 127.0.0.1, one CPU each, each in its own process group and temp dir."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", "1", "--block", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    # short temp dirs of our own: Ray's socket paths must stay under the kernel's 107 characters, and a
    # cluster of another process on this machine keeps its /tmp/ray
    temp_dirs = [tempfile.mkdtemp(prefix="ffray-", dir="/tmp") for _ in range(1 + WORKERS)]
    nodes = [_start_node(["--head", "--port", str(port), "--include-dashboard=false", *common], temp_dirs[0])]
    try:
        _wait_for_port(port, nodes[0])
        for temp_dir in temp_dirs[1:]:
            nodes.append(_start_node(["--address", address, *common], temp_dir))
        _wait_for_nodes(address, 1 + WORKERS)
        yield address
    finally:
        for process in reversed(nodes):
            _end_node(process)
        for temp_dir in temp_dirs:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _start_node(args: list[str], temp_dir: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*RAY, "start", *args, "--temp-dir", temp_dir],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_for_port(port: int, head: subprocess.Popen) -> None:
    """Until the head's GCS listens (a connect is cheap; a driver that joins costs seconds)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and head.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError("the Ray head did not start listening")


def _end_node(process: subprocess.Popen) -> None:
    """Kill a node's whole process group: `ray start --block` on SIGTERM takes half a minute to stop gracefully."""
    group = os.getpgid(process.pid)
    os.killpg(group, signal.SIGKILL)
    process.wait(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _group_alive(group):
        time.sleep(0.1)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


STEPS = ("shard", "dedupe", "filter", "pack")
TIMING = {"seconds", "seconds_total", "driver_peak_rss_mb", "executor"}  # what may differ between executors


def _run_recipe(folder: Path, inputs: dict[str, str], *flags: str) -> Path:
    """shard -> dedupe -> filter -> pack as one ``fusionforge run`` process; returns the recipe's output."""
    steps = [
        {"shard": {"inputs": inputs, "shard_count": 20, "partition_mb": 0.05}},
        {"dedupe": {"keep": "longest", "text_threshold": 0.7}},
        {"filter": {"set": ["text_gopher_quality_v1.min_words=10"]}},
        {"pack": {"seq_len": 2048, "vision_ratio": 0.1, "window": 4}},
    ]
    folder.mkdir()
    recipe = folder / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"output": str(folder / "run"), "steps": steps}, sort_keys=False))
    args = [sys.executable, "-m", "fusionforge.cli", "run", str(recipe), *flags]
    done = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / "run"


def _report(run: Path, step: str) -> dict:
    """A step's report without its timings and executor, the run's folder named alike for both runs."""
    return _without_timing(json.loads((run / step / "report.json").read_text().replace(str(run), "RUN")))


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in TIMING}
    return value


def _table(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


@pytest.mark.slow
@pytest.mark.cluster
def test_each_step_on_a_three_node_cluster_matches_the_in_process_run(loopback_cluster, sample_corpus, tmp_path):
    inputs = dict(sample_corpus)  # every input kind: text, images, pairs, documents, videos, a tar
    cluster = _run_recipe(tmp_path / "cluster", inputs, "--ray-address", loopback_cluster)
    local = _run_recipe(tmp_path / "local", inputs, "--executor", "local")
    for step in STEPS:
        chosen = json.loads((cluster / step / "report.json").read_text())["executor"]
        assert chosen["chosen"] == "ray" and loopback_cluster in chosen["reason"], step  # --ray-address means Ray
        assert _report(cluster, step) == _report(local, step), step
        assert _table(cluster / step / "ledger.parquet") == _table(local / step / "ledger.parquet"), step
    for step in ("shard", "dedupe", "filter"):
        shards = sorted(p.relative_to(cluster / step) for p in (cluster / step / "shards").glob("*.tar"))
        assert shards == sorted(p.relative_to(local / step) for p in (local / step / "shards").glob("*.tar"))
        for name in shards:
            assert (cluster / step / name).read_bytes() == (local / step / name).read_bytes(), name
        assert _table(cluster / step / "manifest.parquet") == _table(local / step / "manifest.parquet"), step
    assert _table(cluster / "dedupe" / "clusters.parquet") == _table(local / "dedupe" / "clusters.parquet")
    assert _table(cluster / "pack" / "plan.parquet") == _table(local / "pack" / "plan.parquet")
    kept = json.loads((local / "pack" / "report.json").read_text())["kept"]
    assert kept > 0 and len(shards) > 1  # the chain really carried records to the end
