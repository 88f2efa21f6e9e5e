"""The rejection-sampling loop: sample k responses per prompt, verify them, retry the unsolved in rounds.

Round 0 sends ``k`` samples per prompt at the base settings. Each later round sends only the
prompts with no passing sample so far, with ``ceil(k * round_k_factor**r)`` samples and the
temperature raised by ``round_temperature_step`` per round (capped at ``max_temperature``);
solved prompts are never sent again. Generation and verification overlap: a response is logged
the moment it arrives and handed to the verifier pool while the next requests are in flight.

Resume: ``-o`` holds the results log; a rerun with ``resume=True`` sends only the samples the log
has no response for, verifies only what has no verdict, and rebuilds every output from the log.
A changed ``k`` or ``rounds`` reuses what matches; changed sampling settings change the settings
hash, so their samples are new. The prompts file must be the same (its sha256 is checked).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.lifecycle import finish_run, prepare_output, reopen
from fusionforge.pipelines.core.progress import Progress, quiet
from fusionforge.pipelines.core.sandbox_network import resolve_network_mode
from fusionforge.pipelines.core.settings import RunSettings, flat_config
from fusionforge.rft.clients import Client, SampleRequest, SampleResult, Sampling
from fusionforge.rft.prompts import Prompt, file_digest, load_prompts
from fusionforge.rft.selection import POLICIES
from fusionforge.rft.store import ResultStore, SampleKey, sample_seed, stable_hash
from fusionforge.rft.verdict import PASS
from fusionforge.rft.verifier_pool import VerifierPool
from fusionforge.rft.verifiers import TASKS

# Bump when a verifier's behaviour changes, so stored verdicts are redone (2: code runs are cut off the network
# and their verdicts say how).
VERIFIER_VERSION = 2
RESULTS_LOG = "results.jsonl"


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


def run_rft(cfg: RFTConfig, client: Client, progress: Progress = quiet) -> dict[str, Any]:
    """Run (or resume) the loop and write every output; returns the report. Closes ``client``."""
    from fusionforge.rft.outputs import write_outputs

    started = time.monotonic()
    out = Path(cfg.output)
    if prepare_output(out, {"prompts_sha256": file_digest(cfg.prompts)}, cfg.run.resume):
        reopen(out)  # a resumed finished run rebuilds its outputs from the log all the same
    prompts, invalid = load_prompts(cfg.prompts, None if cfg.verifier == "auto" else cfg.verifier)
    store = ResultStore(out / RESULTS_LOG)
    state = RunState(cfg, prompts, invalid, store, [], client.model)
    try:
        preload = ["math_verify"] if any(p.task == "math" for p in prompts) else []
        with VerifierPool(cfg.verifier_workers, cfg.verifier_timeout_s, preload) as pool:
            asyncio.run(_run_rounds(state, client, pool, progress))
            state.verifier_replacements = pool.replaced
        state.seconds = time.monotonic() - started
        report = write_outputs(state)
    finally:
        store.close()
    return finish_run(out, report, {"rft": flat_config(cfg), "model": state.model})


async def _run_rounds(state: RunState, client: Client, pool: VerifierPool, progress: Progress) -> None:
    cfg, store = state.config, state.store
    verifier = cfg.verifier_id()
    solved: set[str] = set()
    slots = asyncio.Semaphore(cfg.verifier_workers * 4)  # verifications waiting: backpressure on generation
    pending: set[asyncio.Task] = set()
    by_id = {p.id: p for p in state.prompts}

    async def verify(key: SampleKey, text: str) -> None:
        try:
            prompt = by_id[key[0]]
            options = {**cfg.verify_defaults.get(prompt.task, {}), **prompt.verify_options()}
            began = time.monotonic()
            verdict = await pool.verify_async(prompt.task, text, prompt.answer, options)
            store.append(
                {
                    "kind": "verdict",
                    "prompt_id": key[0],
                    "round": key[1],
                    "index": key[2],
                    "settings": key[3],
                    "verifier": verifier,
                    **verdict.to_dict(),
                    "seconds": round(time.monotonic() - began, 4),
                }
            )
            if verdict.status != PASS:
                store.forget_text(key)
        finally:
            slots.release()

    async def schedule(key: SampleKey) -> None:
        record = store.samples[key]
        if record.get("finish_reason") == "length":  # truncated: not verified, never accepted
            store.forget_text(key)
            return
        await slots.acquire()
        task = asyncio.create_task(verify(key, record["text"]))
        pending.add(task)
        task.add_done_callback(pending.discard)

    try:
        for round_index in range(cfg.rounds):
            active = [p for p in state.prompts if p.id not in solved]
            if not active:
                break
            k, sampling = cfg.round_settings(round_index)
            settings = stable_hash(
                {
                    "sampler": client.identity(),
                    "sampling": sampling.describe(),
                    "seed": cfg.run.seed,
                    "system_prompt": cfg.system_prompt,
                }
            )
            plan = RoundPlan(round_index, k, sampling, settings, [p.id for p in active])
            state.rounds.append(plan)
            todo = [
                (p, [i for i, key in enumerate(state.keys(plan, p.id)) if not store.has_response(key)]) for p in active
            ]
            plan.sent = sum(len(missing) for _, missing in todo)
            plan.reused = len(active) * k - plan.sent
            progress(
                "round",
                {
                    "round": round_index,
                    "prompts": len(active),
                    "k": k,
                    "to_send": plan.sent,
                    "reused": plan.reused,
                    "temperature": sampling.temperature,
                },
            )
            for p in active:
                for key in state.keys(plan, p.id):
                    if store.has_response(key) and store.needs_verdict(key, verifier):
                        await schedule(key)
            requests = (
                SampleRequest(
                    p.id,
                    p.request_messages(cfg.system_prompt),
                    round_index,
                    tuple(missing),
                    tuple(sample_seed(cfg.run.seed, p.id, round_index, i) for i in missing),
                    sampling,
                )
                for p, missing in todo
                if missing
            )
            async for result in client.generate(requests):
                key = (result.prompt_id, result.round, result.index, settings)
                store.append(_sample_record(result, settings))
                progress("sample", {"round": round_index, "error": result.error_kind})
                if result.error is None:
                    await schedule(key)
            await asyncio.gather(*list(pending))
            for p in active:
                if any(_passed(store, key, verifier) for key in state.keys(plan, p.id)):
                    solved.add(p.id)
            progress("round_done", {"round": round_index, "solved": len(solved)})
    finally:
        for task in list(pending):
            task.cancel()
        await asyncio.gather(*list(pending), return_exceptions=True)
        await client.aclose()


def _passed(store: ResultStore, key: SampleKey, verifier: str) -> bool:
    record, verdict = store.samples.get(key), store.verdict(key, verifier)
    return (
        record is not None
        and record.get("finish_reason") != "length"
        and verdict is not None
        and verdict["status"] == PASS
    )


def _sample_record(result: SampleResult, settings: str) -> dict[str, Any]:
    return {
        "kind": "sample",
        "prompt_id": result.prompt_id,
        "round": result.round,
        "index": result.index,
        "settings": settings,
        "seed": result.seed,
        "text": result.text,
        "finish_reason": result.finish_reason,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "latency_s": round(result.latency_s, 4),
        "attempts": result.attempts,
        "retries": result.retries,
        "error_kind": result.error_kind,
        "error": result.error,
        "time": round(time.time(), 3),
    }
