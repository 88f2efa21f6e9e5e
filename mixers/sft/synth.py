"""Vision through code: an image question with a known answer -> a verified, pixel-free tool-use trajectory.

The assistant never sees the image. It calls a ``python`` tool on the image's *file path*; the
code (load, binarise, connected components, crop, measure) runs for real in a ``PythonSandbox`` on that
file, each printed output becomes the tool result, and the final answer is the one the code
printed. A trajectory is kept only when that answer matches the ground truth; otherwise it is
rejected with the reason (a sandbox timeout or memory limit, an error, no result, a wrong answer).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from fusionforge.mixers.sft.programs import (
    Program,
    UnsupportedTask,
    answers_match,
    build_program,
    extract_result,
    final_message,
    user_program,
)
from fusionforge.mixers.sft.sandbox import PythonSandbox, SandboxLimits
from fusionforge.mixers.sft.schema import Conversation, Message, ToolCall, ToolDef, output_row
from fusionforge.mixers.sft.validate import validate
from fusionforge.mixers.sft.vision import VisionScanner, count_vision_parts
from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.images import inspect_image

SYSTEM_PROMPT = (
    "You are a careful visual reasoning assistant. You cannot see images directly. To answer questions about "
    "an image, call the `python` tool: it runs Python code (numpy and Pillow are installed; variables persist "
    "between calls) in a working directory that holds the image file at the path given by the user. Base your "
    "answer on what the code prints."
)
PYTHON_TOOL = ToolDef(
    "python",
    "Execute Python code in a stateful sandbox and return what it prints. numpy and Pillow are available; "
    "there is no network access.",
    {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "The Python code to run."}},
        "required": ["code"],
        "additionalProperties": False,
    },
)


@dataclass
class Outcome:
    """A kept trajectory (``row``) or the reason there is none; ``predicted`` is what the code answered,
    ``network`` how its sandbox session was cut off the network (None when no session ran)."""

    row: dict[str, Any] | None
    reason: str | None
    predicted: str | None = None
    network: str | None = None


def synthesize(
    qa: dict[str, Any], qa_file: str, record_id: str, source: str, limits: SandboxLimits, seed: int = 0
) -> Outcome:
    """Run one QA row's program on its image and return the verified trajectory, or why not."""
    problem = _check_fields(qa)
    if problem:
        return Outcome(None, problem)
    image, resolved = _image_paths(str(qa["image"]), qa_file)
    try:
        inspect_image(Path(resolved).read_bytes())
    except OSError as exc:
        return Outcome(None, f"missing_image: {resolved}: {exc.strerror or exc}")
    except BadMedia as exc:
        return Outcome(None, f"undecodable_image: {resolved}: {exc}")
    rng = random.Random(f"{seed}:{record_id}")
    params = qa.get("params") or {}
    try:
        tolerance = float(params.get("tolerance", 0))
        program = (
            user_program(qa["program"], qa.get("final"))
            if "program" in qa
            else build_program(str(qa.get("task")), params, image, rng)
        )
    except UnsupportedTask as exc:
        return Outcome(None, str(exc))
    except (ValueError, TypeError, AttributeError) as exc:
        return Outcome(None, f"bad_field: 'params' {params!r}: {exc}")
    outputs, problem, network = _execute(program, image, resolved, limits)
    if problem:
        return Outcome(None, problem, network=network)
    predicted = extract_result(outputs[-1])
    expected = str(qa["answer"])
    if predicted is None:
        return Outcome(None, "no_result: the last cell printed no 'result: ...' line", network=network)
    if not answers_match(predicted, expected, tolerance):
        return Outcome(
            None, f"wrong_answer: the code found {predicted!r}, the ground truth is {expected!r}", predicted, network
        )
    conv = _conversation(qa, image, program, outputs, predicted)
    conv.meta = {
        "format": "openai",
        "synthesis": "vision_proxy",
        "task": qa.get("task") or "custom",
        "image": image,
        "expected": expected,
        "qa_id": qa.get("id"),
    }
    row = output_row(record_id, source, conv)
    invalid = validate(conv)
    if invalid:
        return Outcome(None, f"invalid_trajectory: {invalid}", predicted, network)
    if count_vision_parts(row, VisionScanner()):
        return Outcome(None, "vision_in_trajectory: the trajectory text holds a vision part", predicted, network)
    return Outcome(row, None, predicted, network)


def _check_fields(qa: dict[str, Any]) -> str | None:
    if not isinstance(qa.get("image"), str) or not qa["image"]:
        return "bad_field: 'image' must be the path of an image file (relative to the QA file)"
    if not isinstance(qa.get("question"), str) or not qa["question"].strip():
        return "bad_field: 'question' must be a non-empty string"
    if qa.get("answer") in (None, "") or isinstance(qa.get("answer"), (dict, list)):
        return "bad_field: 'answer' must be a string or a number"
    return None


def _image_paths(image: str, qa_file: str) -> tuple[str, str]:
    """(the path the conversation names, the file on disk); absolute or '..' paths become images/<name>."""
    resolved = image if Path(image).is_absolute() else str(Path(qa_file).parent / image)
    pure = PurePosixPath(image.replace("\\", "/"))
    shown = str(pure) if not pure.is_absolute() and ".." not in pure.parts else f"images/{pure.name}"
    return shown, resolved


def _execute(program: Program, image: str, resolved: str, limits: SandboxLimits) -> tuple[list[str], str | None, str]:
    """The cells' outputs, the problem that stopped them (or None), and the session's network mode."""
    outputs = []
    with PythonSandbox({image: resolved}, limits) as box:
        for number, step in enumerate(program.steps, start=1):
            result = box.run(step.code)
            if not result.ok:
                detail = (result.error or "").splitlines()[-1][:200] if result.error else result.status
                return outputs, f"sandbox_{result.status}: step {number}: {detail}", box.network
            text = result.output.rstrip("\n")
            if result.truncated_chars:
                text += f"\n[... {result.truncated_chars} more characters not shown]"
            outputs.append(text)
    return outputs, None, box.network


def _conversation(qa: dict[str, Any], image: str, program: Program, outputs: list[str], answer: str) -> Conversation:
    messages = [Message("user", f"The image is at `{image}`.\n\n{qa['question'].strip()}")]
    for number, (step, output) in enumerate(zip(program.steps, outputs), start=1):
        call = ToolCall(id=f"call_{number}", name="python", arguments={"code": step.code})
        messages.append(Message("assistant", step.say, tool_calls=[call]))
        messages.append(Message("tool", output or "(no output)", tool_call_id=call.id, name="python"))
    messages.append(Message("assistant", final_message(program.final, answer)))
    return Conversation(messages=messages, system=SYSTEM_PROMPT, tools=[PYTHON_TOOL])
