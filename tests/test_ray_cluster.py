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


def _alive_nodes(address: str) -> int:
    code = (
        f"import ray; ray.init(address={address!r}, logging_level='ERROR', log_to_driver=False); "
        "print(sum(n['Alive'] for n in ray.nodes()))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60)
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else 0


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
        time.sleep(5)
        worker = subprocess.Popen(
            [*RAY, "start", "--address", address, "--node-ip-address", "127.0.0.1", *common],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while _alive_nodes(address) < 2:
            assert time.monotonic() < deadline, "the two-node cluster did not come up"
            time.sleep(2)
        yield address
    finally:
        for process in (worker, head):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)


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
