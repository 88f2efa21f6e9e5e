"""A real two-node Ray cluster on 127.0.0.1 (head + worker, one CPU each) running ``fusionforge shard``."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
# the interpreter running the tests, not the `ray` script: a copied venv keeps the shebang of the one it came from
RAY = [sys.executable, "-m", "ray.scripts.scripts"]


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
        "print(sum(n['Alive'] for n in ray.nodes()))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=timeout_s + 60)
    alive = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "0"
    assert done.returncode == 0 and int(alive) == count, f"the two-node cluster did not come up: {done.stderr[-2000:]}"


@pytest.fixture
def two_node_cluster():
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", "1", "--block", "--disable-usage-stats"]
    head = subprocess.Popen(
        [
            *RAY,
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--include-dashboard=false",
            *common,
        ],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    worker = None
    try:
        _wait_for_port(port, head)
        worker = subprocess.Popen(
            [*RAY, "start", "--address", address, "--node-ip-address", "127.0.0.1", *common],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_for_nodes(address, 2)
        yield address
    finally:
        for process in (worker, head):
            if process is not None:
                _end_node(process)


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


def _fusionforge_shard(inputs, out, *extra):
    args = [
        sys.executable,
        "-m",
        "fusionforge.cli",
        "shard",
        *inputs,
        "-o",
        str(out),
        "--shard-count",
        "20",
        "--partition-mb",
        "0.05",
        "--json",
        *extra,
    ]
    done = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
@pytest.mark.cluster
def test_shard_on_a_two_node_cluster_matches_the_local_run(two_node_cluster, sample_corpus, tmp_path):
    inputs = [f"{name}={path}" for name, path in sample_corpus.items()]
    cluster_report = _fusionforge_shard(inputs, tmp_path / "cluster", "--ray-address", two_node_cluster)
    local_report = _fusionforge_shard(inputs, tmp_path / "local", "--executor", "local")
    for key in ("inputs", "kept", "dropped", "failed", "reasons", "shards"):
        assert cluster_report[key] == local_report[key]
    cluster_shards = sorted((tmp_path / "cluster" / "shards").glob("*.tar"))
    assert [p.name for p in cluster_shards] == [p.name for p in sorted((tmp_path / "local" / "shards").glob("*.tar"))]
    for path in cluster_shards:
        assert path.read_bytes() == (tmp_path / "local" / "shards" / path.name).read_bytes()
    assert pq.read_table(tmp_path / "cluster" / "manifest.parquet").equals(
        pq.read_table(tmp_path / "local" / "manifest.parquet")
    )
