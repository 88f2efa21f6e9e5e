import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from fusionforge.mixers.sft.programs import answers_match, extract_result
from fusionforge.mixers.sft.readers import parse_row
from fusionforge.mixers.sft.sandbox import PythonSandbox
from fusionforge.mixers.sft.synth_images import PALETTE, generate
from fusionforge.mixers.sft.synth_job import SynthConfig, run_synth
from fusionforge.mixers.sft.validate import validate
from fusionforge.mixers.sft.vision import VisionScanner, count_vision_parts
from fusionforge.pipelines.core.sandbox_network import LABELS, resolve_network_mode
from fusionforge.pipelines.core.settings import RunSettings


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def code_cells(trajectory):
    return [
        json.loads(c["function"]["arguments"])["code"]
        for m in trajectory["messages"]
        for c in m.get("tool_calls") or []
    ]


def tool_outputs(trajectory):
    return [m["content"] for m in trajectory["messages"] if m["role"] == "tool"]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "proxy"
    report = run_synth(SynthConfig(inputs=(), output=str(out), generate=8, run=RunSettings(executor="local", seed=5)))
    return out, report


def test_generated_questions_become_verified_zero_vision_trajectories(synthesized):
    out, report = synthesized
    truth = {q["id"]: q for q in read_jsonl(out / "qa.jsonl")}
    trajectories = read_jsonl(out / "trajectories.jsonl")
    assert report["inputs"] == 8 and report["kept"] == len(trajectories) == 8
    assert {t: c["kept"] for t, c in report["by_task"].items()} == {
        "count": 2,
        "compare_sizes": 2,
        "bar_value": 2,
        "locate": 2,
    }
    assert report["vision_check"] == "0 vision parts in trajectories.jsonl"
    mode = resolve_network_mode("auto")  # what each session really got on this machine, counted per session
    assert report["sandbox"]["network_requested"] == "auto" and report["sandbox"]["runs_by_network"] == {mode: 8}
    assert report["sandbox"]["network"] == LABELS[mode]
    assert (report["sandbox"]["warning"] is None) == (mode == "namespace")
    for trajectory in trajectories:
        qa = truth[trajectory["meta"]["qa_id"]]
        printed = extract_result(tool_outputs(trajectory)[-1])
        assert answers_match(printed, qa["answer"], qa["params"].get("tolerance", 0)), (printed, qa)
        final = trajectory["messages"][-1]
        assert final["role"] == "assistant" and printed in final["content"]
        assert f"`{qa['image']}`" in trajectory["messages"][1]["content"]
        assert all(qa["image"] in cell for cell in code_cells(trajectory)[:1])
        assert count_vision_parts(trajectory, VisionScanner()) == 0
        conv, media = parse_row(trajectory)
        assert media == [] and validate(conv) is None


def test_tool_results_are_what_the_code_prints_when_run_on_the_image(synthesized):
    out, _ = synthesized
    for trajectory in read_jsonl(out / "trajectories.jsonl")[:4]:
        image = trajectory["meta"]["image"]
        with PythonSandbox({image: out / image}) as box:
            rerun = [box.run(code).output.rstrip("\n") for code in code_cells(trajectory)]
        assert rerun == tool_outputs(trajectory)


def test_the_code_reads_the_pixels(synthesized, tmp_path):
    out, _ = synthesized
    trajectory = next(t for t in read_jsonl(out / "trajectories.jsonl") if t["meta"]["task"] == "count")
    qa = next(q for q in read_jsonl(out / "qa.jsonl") if q["id"] == trajectory["meta"]["qa_id"])
    image = Image.open(out / qa["image"]).convert("RGB")
    draw = ImageDraw.Draw(image)
    spot = next(
        (x, y)
        for y in range(12, 244, 4)
        for x in range(12, 244, 4)
        if all(
            image.getpixel((x + dx, y + dy)) == (245, 245, 240) for dx in range(-11, 12, 2) for dy in range(-11, 12, 2)
        )
    )
    draw.ellipse((spot[0] - 8, spot[1] - 8, spot[0] + 8, spot[1] + 8), fill=PALETTE[qa["params"]["color"]])
    changed = tmp_path / "changed.png"
    image.save(changed)
    with PythonSandbox({qa["image"]: changed}) as box:
        outputs = [box.run(code).output for code in code_cells(trajectory)]
    assert extract_result(outputs[-1]) == str(int(qa["answer"]) + 1)


def test_compare_sizes_crops_each_shape_and_measures_it_in_the_crop(synthesized):
    out, _ = synthesized
    truth = {q["id"]: q for q in read_jsonl(out / "qa.jsonl")}
    compared = [t for t in read_jsonl(out / "trajectories.jsonl") if t["meta"]["task"] == "compare_sizes"]
    assert len(compared) == 2
    for trajectory in compared:
        qa = truth[trajectory["meta"]["qa_id"]]
        calls = [c for m in trajectory["messages"] for c in m.get("tool_calls") or []]
        cells = [json.loads(c["function"]["arguments"])["code"] for c in calls]
        crop_at = next(i for i, code in enumerate(cells) if ".crop(" in code)
        result = next(m["content"] for m in trajectory["messages"] if m.get("tool_call_id") == calls[crop_at]["id"])
        with PythonSandbox({qa["image"]: out / qa["image"]}) as box:
            printed = [box.run(code).output.rstrip("\n") for code in cells[: crop_at + 1]][-1]
        assert printed == result  # the tool result is what the crop cell printed when it ran on the image
        measured = dict(re.findall(r"^(left|right) crop \d+x\d+: (\d+) shape pixels", result, re.MULTILINE))
        assert [int(measured["left"]), int(measured["right"])] == qa["params"]["areas"]  # drawn-alone pixel counts
        assert extract_result(result) == qa["answer"]
        assert trajectory["messages"][-1]["content"] == f"The shape on the {qa['answer']} is larger."


def draw_red_circles(path, centres):
    image = Image.new("RGB", (128, 128), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    for x, y in centres:
        draw.ellipse((x - 9, y - 9, x + 9, y + 9), fill=PALETTE["red"])
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def test_user_qa_files_keep_right_answers_and_reject_everything_else_with_a_reason(tmp_path, write_jsonl):
    draw_red_circles(tmp_path / "qa" / "pics" / "three.png", [(25, 25), (80, 40), (60, 100)])
    (tmp_path / "qa" / "pics" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    count = {"task": "count", "params": {"color": "red"}, "question": "How many red shapes are there?"}
    loop = [{"say": "Let me look.", "code": "while True:\n    pass"}]
    hog = [
        {
            "say": "Let me load everything.",  # address space grows without bound, fast even on a busy machine
            "code": "import numpy as np\nblocks = []\nwhile True:\n    blocks.append(np.empty(2**26, np.uint8))",
        }
    ]
    custom = [
        {
            "say": "I'll measure the image.",
            "code": "from PIL import Image\nimg = Image.open('pics/three.png')\nprint('result:', img.size[0])",
        }
    ]
    rows = [
        {"id": "right", "image": "pics/three.png", "answer": "3", **count},
        {"id": "wrong-truth", "image": "pics/three.png", "answer": "4", **count},
        {"id": "loops", "image": "pics/three.png", "question": "q?", "answer": "1", "program": loop},
        {"id": "hogs", "image": "pics/three.png", "question": "q?", "answer": "1", "program": hog},
        {
            "id": "custom",
            "image": "pics/three.png",
            "question": "How wide is it in pixels?",
            "answer": 128,
            "program": custom,
            "final": "It is {answer} pixels wide.",
        },
        {"id": "missing", "image": "pics/nowhere.png", "answer": "3", **count},
        {"id": "broken", "image": "pics/broken.png", "answer": "3", **count},
        {"id": "odd-task", "image": "pics/three.png", "question": "q?", "answer": "1", "task": "ocr"},
        {"id": "no-answer", "image": "pics/three.png", "question": "q?", "task": "count"},
        {
            "id": "bad-params",
            "image": "pics/three.png",
            "answer": "3",
            **count,
            "params": {"color": "red", "tolerance": "some"},
        },
        '{"id": "cut", "image": ',
    ]
    qa = write_jsonl(tmp_path / "qa" / "user_qa.jsonl", rows)
    out = tmp_path / "out"
    report = run_synth(
        SynthConfig(
            inputs=(f"mine={qa}",), output=str(out), timeout_s=1.5, memory_mb=256, run=RunSettings(executor="local")
        )
    )
    kept = {t["id"]: t for t in read_jsonl(out / "trajectories.jsonl")}
    assert set(kept) == {"mine/right", "mine/custom"}
    assert kept["mine/custom"]["messages"][-1]["content"] == "It is 128 pixels wide."
    assert "There are 3 red shapes" in kept["mine/right"]["messages"][-1]["content"]
    reasons = {r["id"]: r["reason"] for r in read_jsonl(out / "rejected.jsonl")}
    assert reasons["mine/wrong-truth"].startswith("sft_synthesize_v1:wrong_answer: the code found '3'")
    assert reasons["mine/loops"].startswith("sft_synthesize_v1:sandbox_timeout: step 1")
    assert reasons["mine/hogs"].startswith("sft_synthesize_v1:sandbox_memory_limit: step 1")
    assert reasons["mine/missing"].startswith("sft_synthesize_v1:missing_image")
    assert reasons["mine/broken"].startswith("sft_synthesize_v1:undecodable_image")
    assert reasons["mine/odd-task"].startswith("sft_synthesize_v1:unknown_task")
    assert reasons["mine/no-answer"].startswith("sft_synthesize_v1:bad_field: 'answer'")
    assert reasons["mine/bad-params"].startswith("sft_synthesize_v1:bad_field: 'params'")
    assert reasons["mine/user_qa.jsonl#11"].startswith("read:malformed_json")
    ledger = pq.read_table(out / "ledger.parquet").to_pylist()
    assert len(ledger) == len(rows) == report["inputs"] == report["kept"] + report["dropped"] + report["failed"]
    # only rows that reached a sandbox count: right, wrong-truth, loops, hogs and custom
    assert report["sandbox"]["runs_by_network"] == {resolve_network_mode("auto"): 5}


@pytest.mark.ray
def test_ray_and_in_process_synthesis_agree(ray_session, synthesized, tmp_path):
    out, _ = synthesized
    ray_out = tmp_path / "ray"
    run_synth(
        SynthConfig(
            inputs=(), output=str(ray_out), generate=4, run=RunSettings(executor="ray", seed=5), partition_kb=0.8
        )
    )
    local = (out / "trajectories.jsonl").read_text().splitlines()[:4]  # the same seed draws the same first images
    assert (ray_out / "trajectories.jsonl").read_text().splitlines() == local


def test_generator_answers_come_from_the_pixels(tmp_path):
    items = generate(tmp_path, 8, seed=11, tasks=("compare_sizes", "bar_value"))
    for qa in items:
        assert (tmp_path / qa.image).exists()
        if qa.task == "compare_sizes":
            left, right = qa.params["areas"]
            assert qa.answer == ("left" if left > right else "right") and max(left, right) >= 1.3 * min(left, right)
        else:
            assert 5 <= int(qa.answer) <= 95
    assert generate(tmp_path / "again", 8, seed=11, tasks=("compare_sizes", "bar_value")) == items
    with pytest.raises(ValueError, match="unknown task"):
        generate(tmp_path, 1, tasks=("ocr",))


def test_ledger_and_report_name_the_same_step(synthesized):
    out, report = synthesized
    steps = set(pq.read_table(out / "ledger.parquet", columns=["step"]).column("step").to_pylist())
    assert steps == {report["step"]} == {"sft_synth_vision_proxy"}
