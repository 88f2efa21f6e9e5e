"""The settings of an RFT run (``fusionforge rft run``), checked before any request is sent."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.sandbox_network import resolve_network_mode
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.rft.clients import Sampling
from fusionforge.rft.selection import POLICIES
from fusionforge.rft.store import stable_hash
from fusionforge.rft.verifiers import TASKS

# Bump when a verifier's behaviour changes, so stored verdicts are redone (2: code runs are cut off the network
# and their verdicts say how).
VERIFIER_VERSION = 2


@dataclass(frozen=True)
class RFTConfig:
    """Everything a run needs besides the client; see ``fusionforge rft run --help`` for each option."""

    prompts: str
    output: str
    k: int = 8
    rounds: int = 1
    sampling: Sampling = field(default_factory=Sampling)
    round_k_factor: float = 2.0
    round_temperature_step: float = 0.0
    max_temperature: float = 2.0
    accept: str = "first"
    max_per_prompt: int | None = None
    verifier: str = "auto"
    verify_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    verifier_timeout_s: float = 10.0
    verifier_workers: int = 2
    near_dup_threshold: float = 0.8
    system_prompt: str | None = None
    run: RunSettings = RunSettings()  # run.seed: the base of every sample's seed; run.ray_address: ray-vllm's cluster

    def __post_init__(self) -> None:
        """Refuse impossible settings before any request is sent."""
        problems = []
        if self.k < 1 or self.rounds < 1:
            problems.append("-k and --rounds must be >= 1")
        if self.round_k_factor < 1:
            problems.append("--round-k-factor must be >= 1 (later rounds never send fewer samples)")
        if self.accept not in POLICIES:
            problems.append(f"--accept must be one of {', '.join(POLICIES)}")
        if self.verifier not in ("auto", *TASKS):
            problems.append(f"--verifier must be auto or one of {', '.join(TASKS)}")
        if not 0 < self.near_dup_threshold <= 1:
            problems.append("--near-dup-threshold must be in (0, 1]")
        if self.sampling.max_tokens < 1 or self.sampling.temperature < 0:
            problems.append("--max-tokens must be >= 1 and --temperature >= 0")
        code_network = (self.verify_defaults.get("code") or {}).get("network")
        if code_network is not None:
            try:
                resolve_network_mode(str(code_network))
            except ConfigError as exc:
                problems.append(f"--verify-options code.network: {exc}")
        if problems:
            raise ConfigError("; ".join(problems))

    def round_settings(self, round_index: int) -> tuple[int, Sampling]:
        """Samples per prompt and sampling settings of round ``round_index`` (0-based)."""
        k = math.ceil(self.k * self.round_k_factor**round_index - 1e-9)
        temperature = min(self.max_temperature, self.sampling.temperature + self.round_temperature_step * round_index)
        return k, replace(self.sampling, temperature=round(temperature, 6))

    def verifier_id(self) -> str:
        return stable_hash({"verifier": self.verifier, "defaults": self.verify_defaults, "version": VERIFIER_VERSION})
