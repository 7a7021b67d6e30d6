"""Local-file TFDS builders: build the fixture files into a tmp dir, read back, check the field mapping."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from urlvr_jax.tasks.datasets import BUILDERS, DATA_DIR_ENV, load_dataset, load_source, prepare_builder
from urlvr_jax.tasks.datasets.specs import strip_dapo_wrapper

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


def load_fixture(name, split=None, tfds_dir=None):
    return load_dataset(name, split, data_dir=FIXTURES, tfds_dir=tfds_dir)


def test_builders_write_array_record(tfds_dir):
    builder = prepare_builder("math500", data_dir=FIXTURES, tfds_dir=tfds_dir)
    assert isinstance(builder, BUILDERS["math500"])
    assert list(Path(builder.data_dir).glob("urlvr_math500-test.array_record-*"))
    assert set(builder.info.features.keys()) == {"prompt", "answer", "solution", "info"}
    source = builder.as_data_source(split="test")
    assert len(source) == 3 and set(source[0]) == {"prompt", "answer", "solution", "info"}


def test_math500_mapping(tfds_dir):
    examples = load_fixture("math500", tfds_dir=tfds_dir)
    assert [e.answer for e in examples] == ["\\frac{3}{4}", "4", "6"]  # file order is kept
    first = examples[0]
    assert first.prompt == "Simplify $\\frac{6}{8}$."
    assert first.solution.endswith("$\\boxed{\\frac{3}{4}}$.")
    assert first.info == {"source": "math500", "index": 0, "answer_type": "math", "subject": "Prealgebra",
                          "level": 1, "unique_id": "test/prealgebra/9001.json"}


def test_dapo_ttrl_json_dedupes(tfds_dir):
    examples = load_fixture("dapo17k", "train", tfds_dir=tfds_dir)
    assert [e.answer for e in examples] == ["100", "40", "2"]  # the repeated problem is dropped
    assert examples[2].info["index"] == 3 and examples[0].solution is None


def test_aime_and_amc_mapping(tfds_dir):
    aime24 = load_fixture("aime24", tfds_dir=tfds_dir)
    assert [e.answer for e in aime24] == ["11", "000", "12"]  # ints become text, strings are kept
    assert aime24[0].info["url"] == "https://example.invalid/1" and "url" not in aime24[1].info
    aime25 = load_fixture("aime25", tfds_dir=tfds_dir)
    assert aime25[1].prompt == "Find the sum of the digits of $2^{12}$." and aime25[1].info["id"] == "II-2"
    amc = load_fixture("amc23", "test", tfds_dir=tfds_dir)
    assert [e.answer for e in amc] == ["17", "0.75", "12", "23"]


def test_countdown_mapping_and_slices(tfds_dir):
    examples = load_fixture("countdown", tfds_dir=tfds_dir)
    assert len(examples) == 5
    assert examples[1].info["numbers"] == [44, 19, 35] and examples[1].info["target"] == 98
    assert examples[1].answer == "98" and "[44, 19, 35]" in examples[1].prompt
    tail = load_fixture("countdown", "train[-2:]", tfds_dir=tfds_dir)
    assert [e.info["target"] for e in tail] == [61, 7]
    source = load_source("countdown", "train", data_dir=FIXTURES, tfds_dir=tfds_dir)
    assert source[-1] == examples[-1] and source[1:3] == examples[1:3]
    with pytest.raises(IndexError):
        source[5]


def test_missing_file_error_names_path_formats_and_fields(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("aime25", data_dir=tmp_path)
    message = str(err.value)
    folder = tmp_path / "aime25"
    assert str(folder / "test.jsonl") in message and str(folder / "aime_2025.parquet") in message
    assert ".jsonl" in message and ".parquet" in message and "'answer'" in message
    assert DATA_DIR_ENV in message
    with pytest.raises(FileNotFoundError, match=r"(?s)split 'test'.*countdown/test\.jsonl"):
        load_fixture("countdown", "test", tfds_dir=tmp_path)


def test_env_var_sets_data_root(tmp_path, monkeypatch):
    (tmp_path / "amc23").mkdir()
    (tmp_path / "amc23" / "amc23.json").write_text(json.dumps({"question": {"0": "Q?"}, "answer": {"0": 5}}))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    [example] = load_dataset("amc23", tfds_dir=tmp_path / "out")  # column-oriented JSON works too
    assert (example.prompt, example.answer) == ("Q?", "5")


def test_original_dapo_parquet(tmp_path):
    wrap = ("Solve the following math problem step by step. The last line of your response should be of the form "
            "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n{}\n\n"
            "Remember to put your answer on its own line after \"Answer:\".")
    problems = [("Find $1+1$.", "2"), ("Find $2\\cdot 3$.", "6"), ("Find $1+1$.", "2")]
    table = pa.Table.from_pylist([
        {"data_source": "math_dapo", "prompt": [{"role": "user", "content": wrap.format(p)}],
         "reward_model": {"ground_truth": a, "style": "rule"}} for p, a in problems])
    (tmp_path / "dapo17k").mkdir()
    pq.write_table(table, tmp_path / "dapo17k" / "dapo-math-17k.parquet")
    examples = load_dataset("dapo17k", data_dir=tmp_path)  # default tfds dir: <root>/_tfds
    assert [(e.prompt, e.answer) for e in examples] == problems[:2]
    assert examples[0].info["data_source"] == "math_dapo"
    assert list((tmp_path / "_tfds").iterdir())
    assert strip_dapo_wrapper("  plain problem ") == "plain problem"


def test_hf_shards_are_concatenated(tmp_path):
    (tmp_path / "countdown").mkdir()
    for i, rows in enumerate([[{"nums": [1, 2, 3], "target": 6}], [{"nums": [5, 5, 2], "target": 12}]]):
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / "countdown" / f"train-0000{i}-of-00002.parquet")
    examples = load_dataset("countdown", data_dir=tmp_path, tfds_dir=tmp_path / "out")
    assert [e.info["target"] for e in examples] == [6, 12] and [e.info["index"] for e in examples] == [0, 1]


def test_rebuilds_when_the_file_changes(tmp_path):
    path = tmp_path / "aime24" / "test.jsonl"
    path.parent.mkdir()
    path.write_text('{"problem": "A?", "answer": "1"}\n')
    assert [e.answer for e in load_dataset("aime24", data_dir=tmp_path)] == ["1"]
    path.write_text('{"problem": "A?", "answer": "1"}\n{"problem": "B?", "answer": "2"}\n')
    assert [e.answer for e in load_dataset("aime24", data_dir=tmp_path)] == ["1", "2"]


@pytest.mark.parametrize("content, pattern", [
    ('{"problem": "A?"}\n', r"test\.jsonl: row 0: missing field 'answer'.*needs a question field"),
    ('{"answer": "3"}\n', r"row 0: missing a question field \(one of problem, question, prompt\)"),
    ('{"problem": "A?", "answer": "1"}\n{oops\n', r"test\.jsonl: line 2 is not valid JSON"),
])
def test_bad_rows_name_file_row_and_field(tmp_path, content, pattern):
    (tmp_path / "aime24").mkdir()
    (tmp_path / "aime24" / "test.jsonl").write_text(content)
    with pytest.raises(ValueError, match=pattern):
        load_dataset("aime24", data_dir=tmp_path)


def test_bad_countdown_row(tmp_path):
    (tmp_path / "countdown").mkdir()
    (tmp_path / "countdown" / "train.json").write_text(json.dumps([{"nums": "1,2", "target": 3}]))
    with pytest.raises(ValueError, match=r"train\.json: row 0: 'nums' must be a list of integers"):
        load_dataset("countdown", data_dir=tmp_path)


def test_unknown_dataset_and_split():
    with pytest.raises(KeyError, match="unknown dataset 'gsm8k'; known datasets: dapo17k, math500"):
        load_dataset("gsm8k")
    with pytest.raises(ValueError, match=r"dataset 'math500' has splits \['test'\], got split 'train'"):
        load_dataset("math500", "train", data_dir=FIXTURES)
