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
import time
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.lifecycle import finish_run, prepare_output, reopen
from fusionforge.pipelines.core.progress import Progress, quiet
from fusionforge.pipelines.core.settings import flat_config
from fusionforge.rft.clients import Client, SampleRequest, SampleResult
from fusionforge.rft.config import RFTConfig
from fusionforge.rft.outputs import write_outputs
from fusionforge.rft.prompts import file_digest, load_prompts
from fusionforge.rft.run_state import RESULTS_LOG, RoundPlan, RunState
from fusionforge.rft.store import ResultStore, SampleKey, sample_seed, stable_hash
from fusionforge.rft.verdict import PASS
from fusionforge.rft.verifier_pool import VerifierPool


def run_rft(cfg: RFTConfig, client: Client, progress: Progress = quiet) -> dict[str, Any]:
    """Run (or resume) the loop and write every output; returns the report. Closes ``client``."""
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
