import socket
import sys
import time
from pathlib import Path

import pytest

from fusionforge.mixers.sft.sandbox import PythonSandbox, SandboxLimits
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.sandbox import sandbox_mode


def test_cells_run_for_real_and_keep_state(tmp_path):
    data = tmp_path / "numbers.txt"
    data.write_text("3 4 5\n")
    with PythonSandbox({"inputs/numbers.txt": data}) as box:
        first = box.run("import numpy as np\nvalues = np.loadtxt('inputs/numbers.txt')\nprint(values.sum())")
        second = box.run("values.max() * 2")  # state persists; a final expression is printed, as in IPython
        failing = box.run("1 / 0")
        after = box.run("print('still alive', len(values))")
    assert (first.status, first.output) == ("ok", "12.0\n")
    assert second.output.strip() == "np.float64(10.0)"
    assert failing.status == "error" and "ZeroDivisionError" in failing.error
    assert after.output == "still alive 3\n"


def test_environment_is_empty_and_the_working_directory_private(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"not really a png")
    with PythonSandbox({"images/a.png": image}) as box:
        result = box.run("import os, sys\nprint(sorted(os.environ))\nprint(os.getcwd())\nprint(sys.flags.isolated)")
        files = box.run("open('notes.txt', 'w').write('x')\nprint(sorted(os.listdir('.')), os.listdir('images'))")
        readonly = box.run("open('images/a.png', 'ab').write(b'x')")
        staging = box._box._staging
    env, cwd, isolated = result.output.splitlines()
    assert "PYTHONPATH" not in env and "HOME" in env and "RAY" not in env
    assert cwd == "/tmp" and isolated == "1"
    listing = sorted(["images", "notes.txt", *_interpreter_folders_in_tmp()])
    assert files.output.strip() == f"{listing} ['a.png']"
    assert readonly.status == "error" and readonly.error.startswith(("PermissionError", "OSError"))
    assert image.read_bytes() == b"not really a png" and not staging.exists(), "the session's files are removed"


def test_an_endless_loop_is_killed_at_the_timeout():
    started = time.monotonic()
    with PythonSandbox(limits=SandboxLimits(timeout_s=1.5)) as box:
        result = box.run("while True:\n    pass")
        process = box._process
        after = box.run("print(1)")
    assert result.status == "timeout" and "killed" in result.error
    assert 1.4 < result.seconds < 8 and time.monotonic() - started < 15
    assert process is None or process.poll() is not None
    assert after.status == "crashed"


def test_unbounded_allocation_hits_the_memory_limit():
    with PythonSandbox(limits=SandboxLimits(memory_mb=256, timeout_s=30)) as box:
        growing = box.run("chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))")
        huge = box.run("import numpy as np\nnp.ones(10**11)")
    assert growing.status == "memory_limit" and "MemoryError" in growing.error
    assert huge.status == "memory_limit"


def test_output_is_capped_and_files_are_size_limited():
    with PythonSandbox(limits=SandboxLimits(output_chars=100, file_mb=1)) as box:
        chatty = box.run("print('x' * 5000)")
        big_file = box.run("open('big.bin', 'wb').write(b'0' * (3 * 1024 * 1024))")
    assert len(chatty.output) == 100 and chatty.truncated_chars == 5001 - 100
    assert big_file.status == "error" and "File too large" in big_file.error


def test_process_exit_is_reported():
    with PythonSandbox() as box:
        result = box.run("import os\nos._exit(3)")
    assert result.status == "crashed" and "code 3" in result.error


def test_no_network_from_the_sandbox(listening_server):
    port, accepted = listening_server
    probe = socket.create_connection(("127.0.0.1", port), timeout=2)  # the server works from outside
    probe.close()
    time.sleep(0.3)
    before = len(accepted)
    code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')"
    with PythonSandbox() as box:
        result = box.run(code)
        dns = box.run("import socket\nsocket.getaddrinfo('example.org', 80)")
        used = box.mode
    time.sleep(0.3)
    assert result.status == "error" and "connected" not in result.output
    assert dns.status == "error"
    assert len(accepted) == before
    assert used == sandbox_mode() and used.isolation == "namespaces"


def test_bad_limits_and_file_names_are_refused():
    with pytest.raises(ConfigError):
        SandboxLimits(memory_mb=10)
    with pytest.raises(ConfigError, match="max_processes"):
        SandboxLimits(max_processes=1)
    with pytest.raises(ValueError, match="relative path"):
        PythonSandbox({"../escape.png": "x"})


def _interpreter_folders_in_tmp() -> list[str]:
    """Top folders of /tmp the sandbox shows read-only because this interpreter lives there (a checkout in /tmp)."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
    return sorted({p.parts[2] for p in prefixes if p.is_relative_to("/tmp") and len(p.parts) > 2})
