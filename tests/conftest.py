"""Shared fixtures: quiet offline environment, one Ray runtime per session, a small sample corpus."""

from __future__ import annotations

import os
import sys

for key, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
}.items():
    os.environ.setdefault(key, value)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole session: each start costs seconds and about 1 GB."""
    from ray import cloudpickle

    from fusionforge.pipelines.core.ray_env import init_ray

    tests_dir = os.path.dirname(__file__)
    for module in list(sys.modules.values()):  # test modules are imported by now (collection comes first)
        if (getattr(module, "__file__", None) or "").startswith(tests_dir):
            cloudpickle.register_pickle_by_value(module)  # Ray workers cannot import test modules by name
    ray = init_ray(num_cpus=2, object_store_mb=400)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory) -> dict[str, str]:
    """The demo corpus at a small size (every input kind, duplicates and broken inputs included)."""
    from fusionforge.pipelines.demo_corpus import make_corpus

    return make_corpus(tmp_path_factory.mktemp("corpus"), seed=7, n_text=40)


TINY = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """A tiny open_clip model from random weights, saved as .pt and .safetensors (the real loading path)."""
    import json

    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("clip")
    config = folder / "ff-tiny-clip.json"
    config.write_text(json.dumps(TINY))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model("ff-tiny-clip", pretrained=None)
    torch.save(model.state_dict(), folder / "tiny.pt")
    save_file(model.state_dict(), folder / "tiny.safetensors")
    return {
        "config": str(config),
        "pt": str(folder / "tiny.pt"),
        "st": str(folder / "tiny.safetensors"),
        "model": model.eval(),
    }


@pytest.fixture
def listening_server():
    """A TCP server on 127.0.0.1 that records every connection it accepts: ``(port, accepted)``.

    Sandbox tests connect to it from inside a sandbox; a connection it accepted is network access.
    """
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def without_bubblewrap(monkeypatch, tmp_path):
    """A machine that cannot isolate code: every tool of PATH is there except bubblewrap."""
    from pathlib import Path

    from fusionforge.pipelines.core import sandbox

    tools = tmp_path / "bin-without-bwrap"
    tools.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in Path(folder).iterdir():
            if entry.name != "bwrap" and not (tools / entry.name).exists():
                (tools / entry.name).symlink_to(entry)
    monkeypatch.setenv("PATH", str(tools))
    sandbox._isolation.cache_clear()
    yield
    monkeypatch.undo()
    sandbox._isolation.cache_clear()
