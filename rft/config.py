"""The settings of an RFT run (``fusionforge rft run``), checked before any request is sent."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from fusionforge.pipelines.core.bounds import (
    COUNT,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_FRACTION,
    Bound,
    check_bounds,
    within,
)
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.rft.clients import Sampling
from fusionforge.rft.selection import POLICIES
from fusionforge.rft.store import stable_hash
from fusionforge.rft.verifiers import TASKS
from fusionforge.rft.verify_code import LIMIT_KEYS, CodeSandbox

# Bump when a verifier's behaviour changes, so stored verdicts are redone (2: code runs are cut off the network
# and their verdicts say how; 3: code runs in a real sandbox whose limits come from the configuration only).
VERIFIER_VERSION = 3
GROWTH = Bound(integer=False, min=1)  # --round-k-factor: later rounds never send fewer samples


@dataclass(frozen=True)
class RFTConfig:
    """Everything a run needs besides the client; see ``fusionforge rft run --help`` for each option."""

    prompts: str
    output: str
    k: int = within(COUNT, 8)
    rounds: int = within(COUNT, 1)
    sampling: Sampling = field(default_factory=Sampling)
    round_k_factor: float = within(GROWTH, 2.0)
    round_temperature_step: float = 0.0  # may be negative (cooler later rounds); round_settings clamps at 0
    max_temperature: float = within(NON_NEGATIVE, 2.0)
    accept: str = "first"
    max_per_prompt: int | None = within(COUNT, None)
    verifier: str = "auto"
    verify_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    verifier_timeout_s: float = within(POSITIVE, 10.0)
    verifier_workers: int = within(COUNT, 2)
    near_dup_threshold: float = within(POSITIVE_FRACTION, 0.8)
    system_prompt: str | None = None
    allow_unsandboxed: bool = False  # run code answers without isolation where this machine cannot isolate
    run: RunSettings = RunSettings()  # run.seed: the base of every sample's seed; run.ray_address: ray-vllm's cluster

    def __post_init__(self) -> None:
        """Refuse impossible settings before any request is sent."""
        problems = []
        if self.accept not in POLICIES:
            problems.append(f"--accept must be one of {', '.join(POLICIES)}")
        if self.verifier not in ("auto", *TASKS):
            problems.append(f"--verifier must be auto or one of {', '.join(TASKS)}")
        try:
            CodeSandbox.from_options(self.code_sandbox())
        except ConfigError as exc:
            problems.append(f"--verify-options code: {exc}")
        check_bounds(self, *problems)

    def round_settings(self, round_index: int) -> tuple[int, Sampling]:
        """Samples per prompt and sampling settings of round ``round_index`` (0-based)."""
        k = math.ceil(self.k * self.round_k_factor**round_index - 1e-9)
        temperature = self.sampling.temperature + self.round_temperature_step * round_index
        temperature = max(0.0, min(self.max_temperature, temperature))
        return k, replace(self.sampling, temperature=round(temperature, 6))

    def code_sandbox(self) -> dict[str, Any]:
        """The code verifier's sandbox settings: from this configuration only, never from a prompt's data."""
        code = self.verify_defaults.get("code") or {}
        return {**{k: code[k] for k in LIMIT_KEYS if k in code}, "allow_unsandboxed": self.allow_unsandboxed}

    def verifier_id(self) -> str:
        return stable_hash({"verifier": self.verifier, "defaults": self.verify_defaults, "version": VERIFIER_VERSION})
