import pytest

from fusionforge.filters.decontam.ngrams import normalize, window_hashes
from fusionforge.mixers.sft.decontaminate import chat_eval_index as EvalIndex
from fusionforge.mixers.sft.mixture import check_sources, load_mixture, plan_copies, split_of
from fusionforge.pipelines.core.errors import ConfigError

GSM = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?"
)
MMLU = "Which of the following is the body cavity that contains the pituitary gland?"


@pytest.fixture
def index(tmp_path, write_jsonl):
    short = {"id": "gsm-8", "question": "Weng earns $12 an hour.", "answer": "10"}
    gsm = write_jsonl(tmp_path / "gsm8k.jsonl", [{"id": "gsm-7", "question": GSM, "answer": "72"}, short])
    mmlu = write_jsonl(tmp_path / "mmlu.jsonl", [{"question": MMLU, "choices": ["Abdominal", "Cranial"]}])
    chats = write_jsonl(
        tmp_path / "chat_eval.jsonl",
        [
            {
                "messages": [
                    {
                        "role": "user",
                        "content": "Explain why the sky looks blue during the day but red at sunset please.",
                    },
                    {"role": "assistant", "content": "Rayleigh scattering."},
                ]
            }
        ],
    )
    return EvalIndex([f"gsm8k={gsm}", mmlu, f"chat={chats}"])


def test_a_verbatim_copy_of_an_eval_question_is_caught_with_its_set_and_sample(index):
    training = f"Hi! Can you solve this?\n\n{GSM.upper().replace(',', ' ;')}  Show your work."
    match = index.match(["unrelated first turn", training])
    assert (match.eval_set, match.eval_sample) == ("gsm8k", "gsm-7")
    assert len(match.ngram.split()) == 13 and match.ngram in " ".join(normalize(GSM))


def test_unrelated_text_and_shared_short_phrases_are_ignored(index):
    assert index.match(["Natalia sold clips to her friends.", "How many clips did she sell in total?"]) is None
    assert index.match(["The weather in April and May was lovely in Paris this year, with many sunny days."]) is None


def test_eval_texts_shorter_than_n_are_matched_whole(index):
    match = index.match([f"Quick quiz: {MMLU} Answer briefly."])
    assert (match.eval_set, match.eval_sample) == ("mmlu", "mmlu.jsonl:1")  # file:line
    assert index.stats["gsm8k"]["too_short"] == 1  # "Weng earns $12 an hour." has fewer than 8 words
    chat = index.match(["explain WHY the sky looks blue during the day, but red at sunset!"])
    assert chat.eval_set == "chat"


def test_index_statistics_and_ngram_size(tmp_path, write_jsonl):
    path = write_jsonl(tmp_path / "e.jsonl", [{"question": GSM}])
    small = EvalIndex([path], n=5, min_tokens=5)
    assert small.match(["sold half as many clips in"]) is not None
    assert EvalIndex([path]).match(["sold half as many clips in"]) is None
    assert small.stats["e"] == {"path": path, "samples": 1, "indexed": 1, "too_short": 0, "unreadable": 0}
    with pytest.raises(ConfigError, match="named"):
        EvalIndex([path, path])


def test_window_hashes_are_stable_and_position_sensitive():
    words = "a b c d e a b c".split()
    hashes = window_hashes(words, 3)
    assert len(hashes) == 6 and hashes[0] == hashes[5] and hashes[0] != hashes[1]
    assert len(window_hashes(["x"], 3)) == 0


def items(source, count, tokens):
    return [(source, f"{source}-{i}", tokens) for i in range(count)]


def mixture(text):
    import yaml

    from fusionforge.mixers.mixture import parse_mixture

    return parse_mixture(yaml.safe_load(text))


def test_mixture_hits_token_shares_and_respects_epochs():
    data = items("chat", 400, 100) + items("tools", 80, 50) + items("proxy", 40, 200)
    mix = mixture(
        "max_epochs: 1\nsources:\n  chat: {proportion: 0.6}\n  tools: {proportion: 0.2, max_epochs: 3}\n"
        "  proxy: {proportion: 0.2, max_epochs: 2}\n"
    )
    copies, report = plan_copies(mix, data, seed=0)
    shares = {s: e["realised_share"] for s, e in report["sources"].items()}
    assert shares == pytest.approx({"chat": 0.6, "tools": 0.2, "proxy": 0.2}, abs=0.03)
    assert max(copies[:400]) == 1 and max(copies[400:480]) <= 3 and max(copies[480:]) <= 2
    assert report["sources"]["tools"]["epochs"] == pytest.approx(3.0, abs=0.01)  # the binding source
    assert copies == plan_copies(mix, data, seed=0)[0]
    reseeded = mixture(
        "seed: 9\nmax_epochs: 1\nsources:\n  chat: {proportion: 0.6}\n"
        "  tools: {proportion: 0.2, max_epochs: 3}\n  proxy: {proportion: 0.2, max_epochs: 2}\n"
    )
    assert plan_copies(reseeded, data, seed=0)[0] != copies


def test_unnamed_and_empty_sources():
    data = items("a", 50, 10) + items("b", 50, 10)
    copies, report = plan_copies(mixture("sources:\n  a: {choose: 200}\n"), data, 0)
    assert sum(copies[:50]) * 10 == pytest.approx(200, abs=10) and sum(copies[50:]) == 0
    assert report["not_in_mixture"] == ["b"]
    copies, report = plan_copies(mixture("sources:\n  a: {proportion: 1}\n  c: {proportion: 1}\n"), data, 0)
    assert report["empty_sources"] == ["c"] and sum(copies[:50]) > 0


def test_mixture_file_checks(tmp_path):
    good = tmp_path / "mix.yaml"
    good.write_text("sources:\n  chat: {proportion: 3}\n  tools: {proportion: 1, max_epochs: 2}\nbudget_tokens: 1000\n")
    mix = load_mixture(str(good))
    assert mix.sources["tools"].max_epochs == 2 and mix.budget_tokens == 1000
    check_sources(mix, ["chat", "tools", "extra"])
    with pytest.raises(ConfigError, match="not among the inputs"):
        check_sources(mix, ["chat"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  chat: {weight: -1}\n")
    with pytest.raises(ConfigError, match="allowed keys"):
        load_mixture(str(bad))


def test_split_is_by_content_hash_and_stable_when_inputs_grow():
    hashes = [f"{i:064x}" for i in range(4000)]
    splits = [split_of(h, 0, 0.1) for h in hashes]
    assert 0.08 < splits.count("val") / len(splits) < 0.12
    grown = [split_of(h, 0, 0.1) for h in hashes + [f"{i:064x}" for i in range(4000, 6000)]]
    assert grown[:4000] == splits
    assert [split_of(h, 1, 0.1) for h in hashes] != splits
