"""The Ray Data LLM (vLLM) client: its row mapping, and a clear refusal where vllm is not installed."""

import sys

import pytest
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.rft.clients import SampleRequest, Sampling
from fusionforge.rft.ray_vllm_client import RayVLLMClient, request_rows, result_from_row


def test_one_row_per_sample_with_its_own_seed_and_sampling_params():
    sampling = Sampling(temperature=0.7, top_p=0.95, max_tokens=32, stop=("END",), extra_body={"top_k": 20})
    request = SampleRequest("p", [{"role": "user", "content": "hi"}], 1, (0, 1), (11, 12), sampling)
    rows = request_rows([request])
    assert [(r["prompt_id"], r["round"], r["index"], r["seed"]) for r in rows] == [("p", 1, 0, 11), ("p", 1, 1, 12)]
    assert rows[1]["sampling_params"] == {"temperature": 0.7, "top_p": 0.95, "max_tokens": 32, "seed": 12,
                                          "stop": ["END"], "top_k": 20}
    assert rows[0]["messages"] == request.messages


def test_output_rows_become_results():
    base = {"prompt_id": "p", "round": 0, "index": 3, "seed": 9, "sampling_params": {"max_tokens": 8}}
    done = result_from_row({**base, "generated_text": "Answer: 4", "num_generated_tokens": 5,
                            "num_input_tokens": 12, "__inference_error__": ""}, 1.5)
    assert (done.text, done.finish_reason, done.prompt_tokens, done.completion_tokens, done.error) == (
        "Answer: 4", "stop", 12, 5, None)
    cut = result_from_row({**base, "generated_text": "...", "num_generated_tokens": 8, "num_input_tokens": 12}, 1.0)
    assert cut.finish_reason == "length"
    failed = result_from_row({**base, "__inference_error__": "CUDA out of memory"}, 0.1)
    assert failed.error_kind == "engine_error" and "out of memory" in failed.error and failed.text is None


def test_without_vllm_the_client_refuses_with_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as on a machine without vllm (this one has none anyway)
    with pytest.raises(ConfigError, match="pip install vllm"):
        RayVLLMClient("some/model")
