"""RFT loop throughput against a server with a fixed latency: how close to concurrency / latency does it get?

The server (``python -m fusionforge.rft.scripted_server``, in its own process) answers every request
after exactly ``--latency`` seconds, so the ideal throughput at concurrency C is C / latency requests
per second. Two loops send the same requests:

- fusionforge's loop (``run_rft``): HTTP client, results log, verification in the process pool,
  rounds bookkeeping; timed over the round (first request to last verdict);
- the reference a user would otherwise write: ``openai.AsyncOpenAI`` with an ``asyncio.Semaphore``
  of C, nothing logged or verified.

Both ratios to the ideal are printed, and fusionforge's to the reference.

    python bench/rft.py --latency 0.25 --seconds 4 --concurrency 1 16 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

K = 4


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fusionforge.rft.scripted_server", "--latency", str(latency), "--text", "\\boxed{4}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("the scripted server did not start")
    return proc, url


def write_prompts(folder: Path, requests: int) -> Path:
    path = folder / "prompts.jsonl"
    rows = [
        {"id": f"p{i}", "question": f"How many apples are in basket {i}?", "answer": 4, "task": "count"}
        for i in range(max(1, requests // K))
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def fusionforge_loop(url: str, prompts: Path, out: Path, concurrency: int) -> tuple[int, float, float]:
    """(samples, seconds of the round, seconds end to end including pool start-up and outputs)."""
    from fusionforge.rft.clients import OpenAIClient, Sampling
    from fusionforge.rft.config import RFTConfig
    from fusionforge.rft.loop import run_rft

    marks: dict[str, float] = {}

    def progress(kind: str, data: dict) -> None:
        if kind in ("round", "round_done"):
            marks[kind] = time.perf_counter()

    started = time.perf_counter()
    cfg = RFTConfig(prompts=str(prompts), output=str(out), k=K, sampling=Sampling(max_tokens=16), verifier_workers=2)
    report = run_rft(cfg, OpenAIClient(url, "scripted", concurrency=concurrency, n_mode="never"), progress)
    total = time.perf_counter() - started
    assert report["samples"]["by_status"] == {"pass": report["samples"]["total"]}, report["samples"]
    return report["samples"]["total"], marks["round_done"] - marks["round"], total


def openai_reference(url: str, prompts: Path, concurrency: int) -> tuple[int, float]:
    """``AsyncOpenAI`` + a semaphore: the same requests, nothing stored or verified."""
    from openai import AsyncOpenAI

    questions = [json.loads(line)["question"] for line in prompts.read_text().splitlines()]

    async def go() -> int:
        client = AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
        gate = asyncio.Semaphore(concurrency)

        async def one(question: str, seed: int) -> str:
            async with gate:
                reply = await client.chat.completions.create(
                    model="scripted", messages=[{"role": "user", "content": question}], max_tokens=16, seed=seed
                )
                return reply.choices[0].message.content

        answers = await asyncio.gather(*(one(q, i) for q in questions for i in range(K)))
        await client.close()
        return len(answers)

    started = time.perf_counter()
    count = asyncio.run(go())
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.25, help="server seconds per request")
    parser.add_argument("--seconds", type=float, default=4.0, help="ideal seconds per run (sets the request count)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    server, url = start_server(args.latency)
    work = Path(tempfile.mkdtemp(prefix="bench-rft-"))
    rows = []
    try:
        for concurrency in args.concurrency:
            ideal = concurrency / args.latency
            requests = max(K, int(ideal * args.seconds) // K * K)
            folder = work / f"c{concurrency}"
            folder.mkdir()
            prompts = write_prompts(folder, requests)
            samples, loop_s, total_s = fusionforge_loop(url, prompts, folder / "out", concurrency)
            ref_count, ref_s = openai_reference(url, prompts, concurrency)
            rows.append((concurrency, samples, ideal, samples / loop_s, ref_count / ref_s, total_s))
            print(
                f"concurrency {concurrency}: {samples} samples, fusionforge {samples / loop_s:.1f}/s, "
                f"reference {ref_count / ref_s:.1f}/s, ideal {ideal:.1f}/s",
                flush=True,
            )
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\nlatency {args.latency:g} s per request, k = {K}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| concurrency | requests | ideal req/s | fusionforge req/s | vs ideal | AsyncOpenAI+semaphore req/s "
        "| vs ideal | fusionforge / reference | fusionforge end to end s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for concurrency, samples, ideal, ours, ref, total in rows:
        print(
            f"| {concurrency} | {samples} | {ideal:.1f} | {ours:.1f} | {ours / ideal:.2f} | {ref:.1f} | "
            f"{ref / ideal:.2f} | {ours / ref:.2f} | {total:.1f} |"
        )


if __name__ == "__main__":
    main()
