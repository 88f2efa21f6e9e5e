"""The Ray Data LLM (vLLM) client: its row mapping, and a clear refusal where vllm is not installed."""

import json
import sys

import pytest
from click.testing import CliRunner

from fusionforge.cli.main import cli
from fusionforge.pipelines.core.errors import MissingDependency
from fusionforge.rft.clients import SampleRequest, Sampling
from fusionforge.rft.ray_vllm_client import RayVLLMClient, request_rows, result_from_row


def test_one_row_per_sample_with_its_own_seed_and_sampling_params():
    sampling = Sampling(temperature=0.7, top_p=0.95, max_tokens=32, stop=("END",), extra_body={"top_k": 20})
    request = SampleRequest("p", [{"role": "user", "content": "hi"}], 1, (0, 1), (11, 12), sampling)
    rows = request_rows([request])
    assert [(r["prompt_id"], r["round"], r["index"], r["seed"]) for r in rows] == [("p", 1, 0, 11), ("p", 1, 1, 12)]
    assert rows[1]["sampling_params"] == {
        "temperature": 0.7,
        "top_p": 0.95,
        "max_tokens": 32,
        "seed": 12,
        "stop": ["END"],
        "top_k": 20,
    }
    assert rows[0]["messages"] == request.messages


def test_output_rows_become_results():
    base = {"prompt_id": "p", "round": 0, "index": 3, "seed": 9, "sampling_params": {"max_tokens": 8}}
    done = result_from_row(
        {
            **base,
            "generated_text": "Answer: 4",
            "num_generated_tokens": 5,
            "num_input_tokens": 12,
            "__inference_error__": "",
        },
        1.5,
    )
    assert (done.text, done.finish_reason, done.prompt_tokens, done.completion_tokens, done.error) == (
        "Answer: 4",
        "stop",
        12,
        5,
        None,
    )
    cut = result_from_row({**base, "generated_text": "...", "num_generated_tokens": 8, "num_input_tokens": 12}, 1.0)
    assert cut.finish_reason == "length"
    failed = result_from_row({**base, "__inference_error__": "CUDA out of memory"}, 0.1)
    assert failed.error_kind == "engine_error" and "out of memory" in failed.error and failed.text is None


@pytest.mark.parametrize("missing", ["vllm", "ray.data.llm"])
def test_without_the_engine_the_client_refuses_and_names_the_extra(monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # as on a machine without it (this one has neither)
    with pytest.raises(MissingDependency, match=r"pip install 'fusionforge\[ray-vllm\]'.*--client openai"):
        RayVLLMClient("some/model")


def test_the_cli_names_the_extra_and_checks_engine_kwargs(monkeypatch, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "a", "question": "1 + 1?", "answer": 2, "task": "numeric"}) + "\n")
    run = ["rft", "run", str(prompts), "-o", str(tmp_path / "out"), "--client", "ray-vllm", "--model", "m"]
    monkeypatch.setitem(sys.modules, "vllm", None)
    result = CliRunner().invoke(cli, run)
    assert result.exit_code != 0 and "fusionforge[ray-vllm]" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, [*run, "--engine-kwargs", "{tensor_parallel_size: 2}"])
    assert result.exit_code != 0 and "--engine-kwargs is not valid JSON" in result.output
    assert not (tmp_path / "out").exists()
