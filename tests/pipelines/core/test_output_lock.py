"""One writer per output folder: the lock on ``-o`` refuses a second writer and outlives no dead one."""

import errno
import fcntl
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from fusionforge.cli.main import cli
from fusionforge.pipelines.core import output_lock
from fusionforge.pipelines.core.errors import RunError
from fusionforge.pipelines.core.lifecycle import finish_run, prepare_output

# A run that has prepared its folder, written a temporary as a step does, and keeps writing.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fusionforge.pipelines.core import output_lock
    from fusionforge.pipelines.core.lifecycle import prepare_output
    out, how = Path(sys.argv[1]), sys.argv[2]
    if how == "lock":
        output_lock.acquire(out)
    else:
        prepare_output(out, {"plan": 1}, resume=how == "resume")
    (out / "shards").mkdir(exist_ok=True)
    (out / "shards" / ".a.tar.tmp-1").write_text("half a shard")
    print("ready", flush=True)
    time.sleep(120)
    """
)


@pytest.fixture
def holder(tmp_path):
    """Start a process that holds ``tmp_path / 'o'``; yield it; kill it at the end."""
    processes = []

    def start(out, how="fresh"):
        args = [sys.executable, "-c", HOLDER, str(out), how]
        process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout.readline().strip() == "ready"
        return process

    yield start
    for process in processes:
        process.kill()
        process.wait(timeout=30)


def test_a_concurrent_resume_is_refused_and_leaves_the_running_writer_s_temporaries(tmp_path, holder):
    out = tmp_path / "o"
    process = holder(out)
    with pytest.raises(RunError, match=rf"being written by another fusionforge run \(pid {process.pid} on "):
        prepare_output(out, {"plan": 1}, resume=True)
    assert (out / "shards" / ".a.tar.tmp-1").read_text() == "half a shard"


def test_the_cli_refuses_a_concurrent_resume_with_exit_status_1_and_names_the_holder(tmp_path, holder):
    data = tmp_path / "t.jsonl"
    data.write_text('{"text": "one"}\n')
    out = tmp_path / "o"
    args = ["shard", str(data), "-o", str(out), "--executor", "local"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    (out / "_SUCCESS").unlink()  # as if the first run were still going
    process = holder(out, "lock")
    result = CliRunner().invoke(cli, [*args, "--resume"])
    assert result.exit_code == 1, result.output
    assert f"is being written by another fusionforge run (pid {process.pid} on" in result.output
    assert (out / "shards" / ".a.tar.tmp-1").exists()


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_message(tmp_path, holder, caplog):
    out = tmp_path / "o"
    process = holder(out)
    process.kill()
    process.wait(timeout=30)
    left = json.loads((out / output_lock.LOCK_FILE).read_text())
    assert left["pid"] == process.pid
    with caplog.at_level(logging.WARNING, logger="fusionforge"):
        assert prepare_output(out, {"plan": 1}, resume=True) is False
    assert f"taking over the lock of a run that ended without releasing it (pid {process.pid} on" in caplog.text
    assert not (out / "shards" / ".a.tar.tmp-1").exists()  # the dead run's temporaries go, as before
    assert json.loads((out / output_lock.LOCK_FILE).read_text())["pid"] == os.getpid()
    finish_run(out, {}, {"plan": 1})


def test_a_finished_run_releases_the_lock_for_the_next_process(tmp_path, holder):
    out = tmp_path / "o"
    prepare_output(out, {"plan": 1}, resume=False)
    prepare_output(out, {"plan": 1}, resume=True)  # the same process may take its own folder again
    finish_run(out, {}, {"plan": 1})
    assert (out / output_lock.LOCK_FILE).read_text() == ""  # a clean end leaves no holder named
    (out / "_SUCCESS").unlink()
    holder(out, "resume")  # would hang at "ready" or fail if the lock were still held here


def test_without_flock_a_live_pid_on_this_host_holds_and_a_dead_one_is_taken_over(tmp_path, monkeypatch, holder):
    out = tmp_path / "o"
    process = holder(out)

    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "no locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with pytest.raises(RunError, match=f"pid {process.pid} on"):
        output_lock.acquire(out)
    process.kill()
    process.wait(timeout=30)
    output_lock.acquire(out)
    assert json.loads((out / output_lock.LOCK_FILE).read_text())["pid"] == os.getpid()
    output_lock.release(out)
