"""What an RFT run's outputs are built from: its settings, prompts, rounds and results log.

The loop (``rft/loop.py``) fills it; the outputs (``rft/outputs.py``) are rebuilt from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fusionforge.rft.clients import Sampling
from fusionforge.rft.config import RFTConfig
from fusionforge.rft.prompts import Prompt
from fusionforge.rft.store import ResultStore, SampleKey

RESULTS_LOG = "results.jsonl"


@dataclass
class RoundPlan:
    """One round as it ran: its settings, its hash and the prompts it sent."""

    index: int
    k: int
    sampling: Sampling
    settings: str
    prompt_ids: list[str]
    sent: int = 0
    reused: int = 0


@dataclass
class RunState:
    """What the outputs are built from: the prompts, the rounds, and the log."""

    config: RFTConfig
    prompts: list[Prompt]
    invalid: list[Any]
    store: ResultStore
    rounds: list[RoundPlan]
    model: str
    seconds: float = 0.0
    verifier_replacements: int = 0

    def keys(self, plan: RoundPlan, prompt_id: str) -> list[SampleKey]:
        return [(prompt_id, plan.index, i, plan.settings) for i in range(plan.k)]
