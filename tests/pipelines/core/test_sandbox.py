"""The shared sandbox: what a legitimate program gets, the weaker modes, and how they are reported."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fusionforge.pipelines.core import cgroups, sandbox
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.sandbox import Sandbox, SandboxLimits, SandboxMode, SandboxUnavailable, sandbox_summary


def run(box: Sandbox, source: str, timeout_s: float = 60) -> tuple[int, str]:
    proc = box.start([sys.executable, "-I", "-c", source], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = proc.communicate(timeout=timeout_s)
    return proc.returncode, out.decode()


def test_a_legitimate_program_reads_its_inputs_and_writes_its_folder(tmp_path):
    data = tmp_path / "numbers.txt"
    data.write_text("3 4 5\n")
    program = (
        "import os, numpy\n"
        "values = numpy.loadtxt('inputs/numbers.txt')\n"
        "open('sum.txt', 'w').write(str(values.sum()))\n"
        "print(os.getuid(), os.getcwd(), open('sum.txt').read(), open('note.txt').read())"
    )
    with Sandbox(files={"inputs/numbers.txt": data, "note.txt": b"hello"}) as box:
        code, out = run(box, program)
        mode = box.mode
    assert code == 0, out
    assert out.split() == ["65534", "/tmp", "12.0", "hello"]
    assert mode == SandboxMode("namespaces", "cgroup-v1")  # what this machine (root, bwrap, cgroup v1) gives


def test_the_cgroup_is_removed_with_the_sandbox():
    with Sandbox() as box:
        proc = box.start([sys.executable, "-I", "-c", "import time; time.sleep(60)"])
        folders = [folder for _, folder in box._caps._folders]
        assert all((folder / "cgroup.procs").read_text().split() for folder in folders)
    assert proc.poll() is not None and not any(folder.exists() for folder in folders)


def test_the_files_of_a_killed_process_are_removed_by_the_next_sandbox(tmp_path):
    host = (
        "import os, sys\nfrom fusionforge.pipelines.core.sandbox import Sandbox\n"
        "box = Sandbox(files={'main.py': b'pass'}).__enter__()\nprint(box._staging, flush=True)\nos._exit(0)"
    )
    left = subprocess.run([sys.executable, "-c", host], capture_output=True, text=True, timeout=120, check=True)
    staging = Path(left.stdout.strip())
    assert staging.is_dir() and staging.name.startswith("ff-sandbox-")  # its process died without closing it
    with Sandbox():
        assert not staging.exists()


def test_exit_signals_and_the_memory_cap_are_told_apart():
    with Sandbox(SandboxLimits(memory_mb=128)) as box:
        code, _ = run(box, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
        assert box.exit_signal(code) == 9 and not box.memory_exceeded()
    with Sandbox(SandboxLimits(memory_mb=128)) as box:
        # Two processes of 100 MB each, both alive at once (the child holds its memory until the parent
        # has touched its own; without the pipe a busy machine could run them one after the other).
        spread = (
            "import os, time\nr, w = os.pipe()\nif os.fork() == 0:\n"
            "    b = bytearray(100 << 20); b[::4096] = b'x' * (25600)\n"
            "    os.write(w, b'1'); time.sleep(10); os._exit(0)\n"
            "os.read(r, 1)\n"
        )
        code, _ = run(box, spread + "b = bytearray(100 << 20); b[::4096] = b'x' * (25600)\nos.wait()")
        assert box.memory_exceeded()


def test_without_cgroups_the_limits_are_per_process_and_reported_as_weaker(monkeypatch):
    """Where no cgroup can be made, rlimits still stop a fork bomb (per user) and the mode says so."""
    monkeypatch.setattr(cgroups, "_hierarchies", lambda: ())
    with Sandbox(SandboxLimits(max_processes=8)) as box:
        code, out = run(
            box,
            "import os, time\nn = 0\nfor _ in range(100):\n    try:\n        pid = os.fork()\n"
            "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(20); os._exit(0)\n"
            "    n += 1\nprint('forked', n)",
        )
        mode = box.mode
    assert mode == SandboxMode("namespaces", "rlimit") and code == 0
    assert int(re.search(r"forked (\d+)", out).group(1)) < 20
    summary = sandbox_summary({mode.key: 2})
    assert summary["runs_by_mode"] == {"namespaces+rlimit": 2}
    assert "capped per process only" in summary["warning"]


def test_a_machine_that_cannot_isolate_refuses_unless_allowed(without_bubblewrap, tmp_path):
    with pytest.raises(SandboxUnavailable, match="--allow-unsandboxed"):
        Sandbox()
    marker = tmp_path / "written-by-unsandboxed-code"
    with Sandbox(allow_unsandboxed=True) as box:
        code, out = run(box, f"import os; open({str(marker)!r}, 'w').write('x'); print(os.getcwd())")
        mode = box.mode
    assert code == 0 and marker.exists()  # no isolation at all, as the user allowed
    assert mode == SandboxMode("none", "rlimit") and "WITHOUT a sandbox" in sandbox_summary({mode.key: 1})["warning"]


def test_the_summary_names_each_mode_and_warns_only_for_weaker_ones():
    full = SandboxMode("namespaces", "cgroup-v2").key
    assert sandbox_summary({}) == {"isolation": "none ran", "runs_by_mode": {}, "warning": None}
    assert sandbox_summary({full: 3}) == {
        "isolation": SandboxMode("namespaces", "cgroup-v2").label(),
        "runs_by_mode": {full: 3},
        "warning": None,
    }
    mixed = sandbox_summary({full: 2, "namespaces-own-uid+rlimit": 1, "unused+x": 0})
    assert mixed["isolation"].startswith("mixed: ") and mixed["runs_by_mode"] == {
        full: 2,
        "namespaces-own-uid+rlimit": 1,
    }
    assert "your own uid" in mixed["warning"] and "per process only" in mixed["warning"]


def test_bad_limits_and_file_names_are_refused():
    with pytest.raises(ConfigError, match="memory_mb"):
        SandboxLimits(memory_mb=10)
    with pytest.raises(ConfigError, match="max_processes"):
        SandboxLimits(max_processes=0)
    for name in ("../escape", "/etc/passwd", ".hidden", ""):
        with pytest.raises(ValueError, match="relative path"):
            Sandbox(files={name: b"x"})


def test_only_the_system_and_the_interpreter_are_visible():
    paths = sandbox._interpreter_paths()
    assert any(os.path.realpath(sys.base_prefix).startswith(p) for p in paths)
    with Sandbox() as box:
        code, out = run(box, "import os; print(sorted(os.listdir('/')))")
    system = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr"}
    interpreter = {p.split("/")[1] for p in paths}
    assert code == 0 and set(eval(out)) <= system | interpreter
    assert "var" not in out and "home" not in out
