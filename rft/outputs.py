"""The outputs of an RFT run, rebuilt from the results log every time (so a resumed run's are whole).

- ``sft.jsonl``: accepted conversations (OpenAI messages, images as ``file://`` references);
- ``rl_pool.jsonl``: the prompts with 0 < pass rate < 1, with their pass statistics;
- ``pass_rates.parquet``: one row per input prompt (invalid ones too, with their reason);
- ``samples.parquet``: one row per sample: status, extracted answer, selection, tokens, latency;
- ``report.json``: acceptance by task and round, pass@1/pass@k, buckets, tokens, latency
  percentiles, errors by kind, how the code verifier's sandbox was cut off the network;
  ``config.yaml``: the resolved settings (both written by ``lifecycle.finish_run``).

Statuses: ``pass``/``fail`` (verified), ``truncated`` (stopped at max tokens: counted as a failed
attempt, never verified or accepted), ``gen_error`` (no response after every retry),
``verifier_timeout``/``verifier_error``. The pass rate is ``c / n`` with ``n`` = pass + fail +
truncated over every round a prompt was sent in; generation and verifier errors are not model
outcomes and are left out (and counted). pass@1 and pass@k use round 0 only, where all samples
come from the same settings, as the unbiased estimator requires.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.pipelines.core.io import atomic_path
from fusionforge.pipelines.core.sandbox_network import network_summary
from fusionforge.rft.run_state import RESULTS_LOG, RoundPlan, RunState
from fusionforge.rft.selection import ACCEPTED, DUP_EXACT, DUP_NEAR, select
from fusionforge.rft.stats import INVALID, MIXED, bucket, pass_at_k, percentiles
from fusionforge.rft.verdict import FAIL, PASS

TRUNCATED, GEN_ERROR, UNVERIFIED_SAMPLE = "truncated", "gen_error", "unverified"
COUNTED = (PASS, FAIL, TRUNCATED)

PASS_RATES_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("task", pa.string()),
        ("bucket", pa.string()),
        ("n", pa.int64()),
        ("passed", pa.int64()),
        ("pass_rate", pa.float64()),
        ("pass_at_1", pa.float64()),
        ("pass_at_k", pa.float64()),
        ("k", pa.int64()),
        ("samples", pa.int64()),
        ("truncated", pa.int64()),
        ("gen_errors", pa.int64()),
        ("verifier_timeouts", pa.int64()),
        ("verifier_errors", pa.int64()),
        ("accepted", pa.int64()),
        ("rounds_sent", pa.int64()),
        ("solved_round", pa.int64()),
        ("error", pa.string()),
    ]
)
SAMPLES_SCHEMA = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("round", pa.int64()),
        ("index", pa.int64()),
        ("seed", pa.int64()),
        ("settings", pa.string()),
        ("status", pa.string()),
        ("detail", pa.string()),
        ("extracted", pa.string()),
        ("selection", pa.string()),
        ("finish_reason", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("chars", pa.int64()),
        ("latency_s", pa.float64()),
        ("attempts", pa.int64()),
        ("retries", pa.string()),
        ("error", pa.string()),
    ]
)


def sample_status(record: dict[str, Any] | None, verdict: dict[str, Any] | None) -> str | None:
    if record is None:
        return None
    if record.get("error") is not None:
        return GEN_ERROR
    if record.get("finish_reason") == "length":
        return TRUNCATED
    return verdict["status"] if verdict is not None else UNVERIFIED_SAMPLE


class _Totals:
    """Counters the report is made of, filled prompt by prompt."""

    def __init__(self, rounds: list[RoundPlan]) -> None:
        self.status: Counter = Counter()
        self.gen_errors: Counter = Counter()
        self.retries: Counter = Counter()
        self.duplicates: Counter = Counter()
        self.latencies: list[float] = []
        self.tokens = {"prompt": 0, "completion": 0}
        self.by_task: dict[str, Counter] = defaultdict(Counter)
        self.by_round = {plan.index: Counter() for plan in rounds}
        self.buckets: Counter = Counter()
        self.pass1: list[float] = []
        self.passk: list[float] = []
        self.code_network: Counter = Counter()  # code verifications by the sandbox network mode they ran under

    def add_sample(self, plan: RoundPlan, record: dict[str, Any], verdict: dict[str, Any] | None, status: str) -> None:
        self.status[status] += 1
        if verdict is not None and verdict.get("sandbox_network"):
            self.code_network[verdict["sandbox_network"]] += 1
        self.by_round[plan.index]["samples"] += 1
        self.by_round[plan.index]["passed"] += status == PASS
        if status == GEN_ERROR:
            self.gen_errors[record.get("error_kind") or "unknown"] += 1
        else:
            self.latencies.append(float(record.get("latency_s") or 0.0))
        self.retries.update(record.get("retries") or {})
        self.tokens["prompt"] += record.get("prompt_tokens") or 0
        self.tokens["completion"] += record.get("completion_tokens") or 0


def write_outputs(state: RunState) -> dict[str, Any]:
    """Write every data output of ``state`` atomically and return the report (``finish_run`` writes it)."""
    cfg, store = state.config, state.store
    out = Path(cfg.output)
    verifier = cfg.verifier_id()
    totals = _Totals(state.rounds)
    sent_in = {plan.index: set(plan.prompt_ids) for plan in state.rounds}
    sft, rl_pool, prompt_rows, sample_rows = [], [], [], []
    for prompt in state.prompts:
        outcomes = []
        for plan in state.rounds:
            if prompt.id in sent_in[plan.index]:
                for key in state.keys(plan, prompt.id):
                    record, verdict = store.samples.get(key), store.verdict(key, verifier)
                    status = sample_status(record, verdict)
                    if status is not None:
                        outcomes.append((plan, record, verdict, status))
                        totals.add_sample(plan, record, verdict, status)
        passing = [o for o in outcomes if o[3] == PASS]
        fates = select([o[1]["text"] for o in passing], cfg.accept, cfg.max_per_prompt, cfg.near_dup_threshold)
        fate_of = {(o[0].index, o[1]["index"]): fate for o, fate in zip(passing, fates)}
        totals.duplicates.update(f for f in fates if f in (DUP_EXACT, DUP_NEAR))
        for plan, record, verdict, status in outcomes:
            fate = fate_of.get((plan.index, record["index"]))
            sample_rows.append(_sample_row(record, verdict, status, fate))
            if fate == ACCEPTED:
                sft.append(_sft_line(state, prompt, plan, record, verdict))
                totals.by_round[plan.index]["accepted"] += 1
        row = _prompt_row(prompt, outcomes, fates, cfg.k)
        prompt_rows.append(row)
        totals.buckets[row["bucket"]] += 1
        for plan in state.rounds:
            if row["solved_round"] == plan.index:
                totals.by_round[plan.index]["newly_solved"] += 1
        task = totals.by_task[prompt.task]
        task.update(
            {
                "prompts": 1,
                "solved": int(row["solved_round"] is not None),
                "accepted_samples": row["accepted"],
                "samples": row["n"],
                "passed": row["passed"],
            }
        )
        if row["pass_at_1"] is not None:
            totals.pass1.append(row["pass_at_1"])
        if row["pass_at_k"] is not None:
            totals.passk.append(row["pass_at_k"])
        if row["bucket"] == MIXED:
            rl_pool.append(_rl_line(state, prompt, row))
    for bad in state.invalid:
        prompt_rows.append(
            {
                **{f.name: None for f in PASS_RATES_SCHEMA},
                "id": bad.id,
                "bucket": INVALID,
                "error": bad.reason,
                "k": cfg.k,
            }
        )
        totals.buckets[INVALID] += 1
    _write_jsonl(out / "sft.jsonl", sft)
    _write_jsonl(out / "rl_pool.jsonl", rl_pool)
    _write_parquet(out / "pass_rates.parquet", prompt_rows, PASS_RATES_SCHEMA)
    _write_parquet(out / "samples.parquet", sample_rows, SAMPLES_SCHEMA)
    return _report(state, totals, len(sft), len(rl_pool))


def _prompt_row(prompt, outcomes, fates, k: int) -> dict[str, Any]:
    statuses = Counter(o[3] for o in outcomes)
    n = sum(statuses[s] for s in COUNTED)
    round0 = [o[3] for o in outcomes if o[0].index == 0]
    n0, c0 = sum(s in COUNTED for s in round0), sum(s == PASS for s in round0)
    solved = [o[0].index for o in outcomes if o[3] == PASS]
    return {
        "id": prompt.id,
        "task": prompt.task,
        "bucket": bucket(n, statuses[PASS]),
        "n": n,
        "passed": statuses[PASS],
        "pass_rate": statuses[PASS] / n if n else None,
        "pass_at_1": c0 / n0 if n0 else None,
        "pass_at_k": pass_at_k(n0, c0, k) if n0 else None,
        "k": k,
        "samples": len(outcomes),
        "truncated": statuses[TRUNCATED],
        "gen_errors": statuses[GEN_ERROR],
        "verifier_timeouts": statuses["verifier_timeout"],
        "verifier_errors": statuses["verifier_error"],
        "accepted": sum(f == ACCEPTED for f in fates),
        "rounds_sent": len({o[0].index for o in outcomes}),
        "solved_round": min(solved) if solved else None,
        "error": None,
    }


def _sample_row(record, verdict, status, fate) -> dict[str, Any]:
    verdict = verdict or {}
    chars = record.get("chars", len(record["text"]) if record.get("text") is not None else None)
    return {
        "prompt_id": record["prompt_id"],
        "round": record["round"],
        "index": record["index"],
        "seed": record["seed"],
        "settings": record["settings"],
        "status": status,
        "detail": verdict.get("detail"),
        "extracted": verdict.get("extracted"),
        "selection": fate,
        "finish_reason": record.get("finish_reason"),
        "prompt_tokens": record.get("prompt_tokens"),
        "completion_tokens": record.get("completion_tokens"),
        "chars": chars,
        "latency_s": record.get("latency_s"),
        "attempts": record.get("attempts"),
        "retries": json.dumps(record.get("retries") or {}, sort_keys=True),
        "error": record.get("error"),
    }


def _sft_line(state: RunState, prompt, plan: RoundPlan, record, verdict) -> dict[str, Any]:
    messages = [*prompt.sft_messages(state.config.system_prompt), {"role": "assistant", "content": record["text"]}]
    return {
        "id": f"{prompt.id}#r{plan.index}s{record['index']}",
        "prompt_id": prompt.id,
        "messages": messages,
        "images": list(prompt.images),
        "task": prompt.task,
        "answer": prompt.answer,
        "extracted": verdict.get("extracted"),
        "metadata": prompt.metadata,
        "round": plan.index,
        "sample_index": record["index"],
        "seed": record["seed"],
        "temperature": plan.sampling.temperature,
        "model": state.model,
        "settings": plan.settings,
    }


def _rl_line(state: RunState, prompt, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": prompt.id,
        "messages": prompt.sft_messages(state.config.system_prompt),
        "images": list(prompt.images),
        "answer": prompt.answer,
        "task": prompt.task,
        "verify": prompt.verify,
        "metadata": prompt.metadata,
        "pass_rate": row["pass_rate"],
        "n": row["n"],
        "passed": row["passed"],
        "pass_at_1": row["pass_at_1"],
    }


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_parquet(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def _report(state: RunState, totals: _Totals, accepted: int, rl_pool: int) -> dict[str, Any]:
    cfg = state.config
    invalid_reasons = Counter(bad.reason.split(":", 1)[0] for bad in state.invalid)
    by_task = {}
    for task, c in sorted(totals.by_task.items()):
        by_task[task] = {
            "prompts": c["prompts"],
            "solved": c["solved"],
            "accepted_samples": c["accepted_samples"],
            "samples_counted": c["samples"],
            "passed": c["passed"],
            "pass_rate": round(c["passed"] / c["samples"], 6) if c["samples"] else None,
        }
    by_round = [
        {
            "round": plan.index,
            "k": plan.k,
            "temperature": plan.sampling.temperature,
            "prompts": len(plan.prompt_ids),
            "requests_sent": plan.sent,
            "reused_from_log": plan.reused,
            "samples": totals.by_round[plan.index]["samples"],
            "passed": totals.by_round[plan.index]["passed"],
            "newly_solved": totals.by_round[plan.index]["newly_solved"],
            "accepted_samples": totals.by_round[plan.index]["accepted"],
        }
        for plan in state.rounds
    ]
    return {
        "step": "rft",
        "model": state.model,
        "prompts": {
            "inputs": len(state.prompts) + len(state.invalid),
            "valid": len(state.prompts),
            "invalid": len(state.invalid),
            "invalid_reasons": dict(sorted(invalid_reasons.items())),
        },
        "solved": sum(r["newly_solved"] for r in by_round),
        "accepted_samples": accepted,
        "rl_pool": rl_pool,
        "buckets": dict(sorted(totals.buckets.items())),
        "k": cfg.k,
        "pass_at_1": _mean(totals.pass1),
        "pass_at_k": _mean(totals.passk),
        "prompts_with_pass_at_k": len(totals.passk),
        "samples": {"total": sum(totals.status.values()), "by_status": dict(sorted(totals.status.items()))},
        "duplicates": {"exact": totals.duplicates[DUP_EXACT], "near": totals.duplicates[DUP_NEAR]},
        "acceptance_by_task": by_task,
        "acceptance_by_round": by_round,
        "tokens": {**totals.tokens, "total": totals.tokens["prompt"] + totals.tokens["completion"]},
        "latency_s": percentiles(totals.latencies),
        "errors": {
            "generation": dict(sorted(totals.gen_errors.items())),
            "retries": dict(sorted(totals.retries.items())),
            "verifier": {
                "verifier_timeout": totals.status["verifier_timeout"],
                "verifier_error": totals.status["verifier_error"],
            },
            "verifier_processes_replaced": state.verifier_replacements,
        },
        "code_sandbox": network_summary(totals.code_network),
        "log": {"records_loaded": state.store.loaded_records, "torn_bytes_dropped": state.store.torn_bytes},
        "seconds": round(state.seconds, 3),
        "outputs": {
            "sft": "sft.jsonl",
            "rl_pool": "rl_pool.jsonl",
            "pass_rates": "pass_rates.parquet",
            "samples": "samples.parquet",
            "log": RESULTS_LOG,
        },
    }
