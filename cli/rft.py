"""``fusionforge rft``: rejection-sampling fine-tuning data from prompts with verifiable answers."""

from __future__ import annotations

import json
from contextlib import contextmanager

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fusionforge.cli.options import library_errors, ranged
from fusionforge.cli.render import console, print_report, print_sandbox
from fusionforge.pipelines.core.bounds import COUNT, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, POSITIVE_FRACTION, SEED
from fusionforge.pipelines.core.settings import build_config
from fusionforge.rft.client_factory import CLIENTS
from fusionforge.rft.clients import N_MODES
from fusionforge.rft.config import GROWTH
from fusionforge.rft.selection import POLICIES
from fusionforge.rft.verifiers import TASKS


def _json_object(ctx: click.Context, param: click.Parameter, value: str | None) -> dict:
    if value is None:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a JSON object")
    return parsed


@click.group()
def rft() -> None:
    """Rejection-sampling fine-tuning: sample k answers per prompt, verify them, keep the right ones.

    \b
    Example:
      fusionforge rft run prompts.jsonl -o rft-out/ --endpoint http://127.0.0.1:8000/v1 --model Qwen/Qwen3-8B -k 8
    """


@rft.command("run")
@click.argument("prompts", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--endpoint",
    envvar="FUSIONFORGE_RFT_ENDPOINT",
    show_envvar=True,
    help="OpenAI-compatible base URL (vLLM, SGLang, transformers serve), e.g. http://127.0.0.1:8000/v1.",
)
@click.option("--model", required=True, help="Served model name (openai client) or model folder/source.")
@click.option("-k", "k", type=ranged(COUNT), default=8, show_default=True, help="Samples per prompt in round 1.")
@click.option(
    "--rounds",
    type=ranged(COUNT),
    default=1,
    show_default=True,
    help="Rounds; prompts with no accepted sample are sent again in the next round.",
)
@click.option("--temperature", type=ranged(NON_NEGATIVE), default=1.0, show_default=True)
@click.option("--top-p", type=ranged(POSITIVE_FRACTION), default=None)
@click.option(
    "--max-tokens",
    type=ranged(COUNT),
    default=1024,
    show_default=True,
    help="Per response; a response cut at this length counts as failed (truncated).",
)
@click.option("--stop", multiple=True, help="Stop string (repeatable).")
@click.option("--concurrency", type=ranged(COUNT), default=16, show_default=True, help="Requests in flight.")
@click.option(
    "--verifier",
    type=click.Choice(["auto", *TASKS]),
    default="auto",
    show_default=True,
    help="'auto': each prompt's task field; a name: that verifier for every prompt.",
)
@click.option(
    "--accept",
    type=click.Choice(POLICIES),
    default="first",
    show_default=True,
    help="Which distinct passing samples of a prompt go to sft.jsonl.",
)
@click.option(
    "--max-per-prompt", type=ranged(COUNT), default=None, help="With --accept all: at most this many per prompt."
)
@click.option(
    "--round-k-factor",
    type=ranged(GROWTH),
    default=2.0,
    show_default=True,
    help="Round r sends ceil(k * factor^r) samples per unsolved prompt.",
)
@click.option(
    "--round-temperature-step",
    type=float,
    default=0.0,
    show_default=True,
    help="Round r samples at temperature + r * step.",
)
@click.option("--max-temperature", type=ranged(NON_NEGATIVE), default=2.0, show_default=True)
@click.option(
    "--near-dup-threshold",
    type=ranged(POSITIVE_FRACTION),
    default=0.8,
    show_default=True,
    help="Accepted responses of a prompt this similar (Jaccard of word 5-grams) count as duplicates.",
)
@click.option("--system-prompt", default=None, help="Prepended to prompts that have no system message.")
@click.option(
    "--extra-body",
    callback=_json_object,
    default=None,
    help="JSON object merged into every request (top_k, generation_config ...).",
)
@click.option(
    "--verify-options",
    callback=_json_object,
    default=None,
    help='JSON defaults per task, e.g. \'{"numeric": {"rel_tol": 0.05}}\' (a prompt\'s verify wins). '
    "The code sandbox's limits are set here only, never by a prompt: "
    '\'{"code": {"time_limit_s": 5, "memory_mb": 1024, "max_processes": 32}}\'.',
)
@click.option(
    "--timeout",
    "timeout_s",
    type=ranged(POSITIVE),
    default=300.0,
    show_default=True,
    help="Seconds per request attempt.",
)
@click.option(
    "--max-retries",
    type=ranged(NON_NEGATIVE_INT),
    default=5,
    show_default=True,
    help="Retries on timeouts, connection errors, 408, 429 and 5xx (exponential backoff, jitter).",
)
@click.option(
    "--n-mode",
    type=click.Choice(N_MODES),
    default="auto",
    show_default=True,
    help="'auto': ask for k samples with n and fall back to one request per sample if the server "
    "ignores n; 'never': one request per sample.",
)
@click.option(
    "--verifier-timeout",
    type=ranged(POSITIVE),
    default=10.0,
    show_default=True,
    help="Wall-clock seconds per verification (then verifier_timeout).",
)
@click.option("--verifier-workers", type=ranged(COUNT), default=2, show_default=True, help="Verifier processes.")
@click.option("--api-key", envvar="OPENAI_API_KEY", show_envvar=True, default=None)
@click.option(
    "--client",
    "client_kind",
    type=click.Choice(CLIENTS),
    default="openai",
    show_default=True,
    help="'transformers': in-process generate; 'ray-vllm': Ray Data LLM on GPUs.",
)
@click.option(
    "--engine-kwargs",
    default=None,
    help="ray-vllm: vLLM engine_kwargs, a JSON object, e.g. '{\"tensor_parallel_size\": 2}' "
    "(needs the ray-vllm extra and GPUs; see docs/install.md).",
)
@click.option(
    "--engine-concurrency",
    type=ranged(COUNT),
    default=1,
    show_default=True,
    help="ray-vllm: vLLM replicas, each on tensor_parallel_size GPUs.",
)
@click.option("--ray-address", envvar="FUSIONFORGE_RAY_ADDRESS", default=None, help="ray-vllm: Ray cluster.")
@click.option("--seed", type=ranged(SEED), default=0, show_default=True, help="Base of every sample's seed.")
@click.option("--resume", is_flag=True, help="Continue a killed run in the same -o; finished requests are not sent.")
@click.option(
    "--allow-unsandboxed",
    is_flag=True,
    help="Where this machine cannot isolate code (no bubblewrap or no user namespaces), run `code` answers "
    "anyway, WITHOUT isolation (they could read your files and reach the network). Without this flag a run "
    "with code prompts refuses. The isolation used is reported.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@library_errors
def run(prompts, output, model, stop, verify_options, verifier_timeout, client_kind, as_json, **options):
    """Sample k responses per prompt, verify each against the prompt's answer, and write the results.

    PROMPTS is JSONL or Parquet: id, messages or question, optional images (local paths),
    answer, task (math, numeric, exact, choice, count, bbox, json, code), optional verify and
    metadata. Writes sft.jsonl (accepted conversations), rl_pool.jsonl (prompts the model solves
    sometimes), pass_rates.parquet, samples.parquet, report.json and the results log into OUTPUT.

    \b
    Example:
      fusionforge rft run prompts.jsonl -o rft-out/ --endpoint http://127.0.0.1:8000/v1 \\
          --model Qwen/Qwen3-8B -k 8 --rounds 2 --accept shortest --concurrency 64
      fusionforge rft run prompts.jsonl -o rft-out/ --endpoint http://127.0.0.1:8000/v1 \\
          --model Qwen/Qwen3-8B -k 8 --resume
    """
    from fusionforge.rft.client_factory import make_client
    from fusionforge.rft.clients import Sampling
    from fusionforge.rft.config import RFTConfig
    from fusionforge.rft.loop import run_rft

    sampling = build_config(Sampling, {**options, "stop": tuple(stop)})
    given = {"verify_defaults": verify_options, "verifier_timeout_s": verifier_timeout, "sampling": sampling}
    cfg = build_config(RFTConfig, {**options, "prompts": prompts, "output": output, **given})
    client_settings = ("endpoint", "api_key", "concurrency", "timeout_s", "max_retries", "n_mode")
    client = make_client(
        client_kind,
        model,
        **{k: options[k] for k in client_settings},
        seed=cfg.run.seed,
        engine_kwargs=options["engine_kwargs"],
        engine_concurrency=options["engine_concurrency"],
        ray_address=cfg.run.ray_address,
    )
    with sample_progress() as progress:
        report = run_rft(cfg, client, progress=progress)
    if as_json:
        print_report(report, True, "")
    else:
        console.print(summary_table(report, f"fusionforge rft run -> {output}"))
        if report["code_sandbox"]["runs_by_mode"]:
            print_sandbox(report["code_sandbox"], "code verifier sandbox")


@contextmanager
def sample_progress():
    """Yields a progress callback: one bar per round over the samples it sends."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        current = []

        def update(kind: str, data: dict) -> None:
            if kind == "round":
                current[:] = [
                    bar.add_task(
                        f"round {data['round'] + 1}: {data['prompts']} prompts x {data['k']}", total=data["to_send"]
                    )
                ]
            elif kind == "sample" and current:
                bar.advance(current[0])

        yield update


def summary_table(report: dict, title: str) -> Table:
    """Prompts, solved, accepted, RL pool, pass@1/pass@k, buckets, samples by status, errors, time."""
    table = Table(title=title, header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    prompts = report["prompts"]
    table.add_row("prompts (valid / invalid)", f"{prompts['valid']:,} / {prompts['invalid']:,}")
    table.add_row("solved prompts", f"{report['solved']:,}")
    table.add_row("accepted samples (sft.jsonl)", f"{report['accepted_samples']:,}")
    table.add_row("RL pool (rl_pool.jsonl)", f"{report['rl_pool']:,}")
    for key in ("pass_at_1", "pass_at_k"):
        value = report[key]
        label = "pass@1" if key == "pass_at_1" else f"pass@{report['k']}"
        table.add_row(f"{label} (round 1)", "-" if value is None else f"{value:.3f}")
    for name, count in report["buckets"].items():
        table.add_row(f"  bucket {name}", f"{count:,}")
    for name, count in report["samples"]["by_status"].items():
        table.add_row(f"  samples {name}", f"{count:,}")
    errors = report["errors"]
    for kind, count in errors["retries"].items():
        table.add_row(f"  retries {kind}", f"{count:,}")
    if report["latency_s"]:
        table.add_row("latency p50 / p99", f"{report['latency_s']['p50']:.2f} / {report['latency_s']['p99']:.2f} s")
    table.add_row("tokens (prompt + completion)", f"{report['tokens']['total']:,}")
    table.add_row("time", f"{report['seconds']:.1f} s")
    return table
