"""Local-file TFDS builders: the fixture files (tests/fixtures/datasets, written by make_fixtures.py) in every
layout build into a tmp dir and read back as the same examples; field mapping, duplicates and bad input."""

import json
import sys
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from urlvr_jax.rl.data import train_source, validation_examples
from urlvr_jax.tasks.datasets import BUILDERS, DATA_DIR_ENV, load_dataset, load_source, prepare_builder
from urlvr_jax.tasks.datasets.fields import parse_fields
from urlvr_jax.tasks.datasets.specs import strip_dapo_wrapper
from urlvr_jax.utils.config import apply_overrides, load_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"
LAYOUTS = FIXTURES / "layouts"
sys.path.insert(0, str(FIXTURES))
import make_fixtures as rows  # noqa: E402  (the rows every fixture file holds)

MAPPED = "question=query,answer=gold,solution=explanation"


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


def load_fixture(name, split=None, tfds_dir=None, root=FIXTURES, **options):
    return load_dataset(name, split, data_dir=root, tfds_dir=tfds_dir, **options)


def pairs(examples):
    return [(e.prompt, e.answer) for e in examples]


def test_builders_write_array_record(tfds_dir):
    builder = prepare_builder("math500", data_dir=FIXTURES, tfds_dir=tfds_dir)
    assert isinstance(builder, BUILDERS["math500"])
    assert list(Path(builder.data_dir).glob("urlvr_math500-test.array_record-*"))
    assert set(builder.info.features.keys()) == {"prompt", "answer", "solution", "info"}
    source = builder.as_data_source(split="test")
    assert len(source) == 4 and set(source[0]) == {"prompt", "answer", "solution", "info"}


def test_math500_mapping(tfds_dir):
    examples = load_fixture("math500", tfds_dir=tfds_dir)
    assert pairs(examples) == [(p, a) for p, a, *_ in rows.MATH500]  # file order is kept
    first = examples[0]
    assert first.solution.endswith("\\right)}.$")
    assert first.info == {"source": "math500", "index": 0, "answer_type": "math", "subject": "Precalculus",
                          "level": 2, "unique_id": "test/precalculus/807.json"}


def test_dapo_identical_repeat_is_dropped_silently(tfds_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        examples = load_fixture("dapo17k", "train", tfds_dir=tfds_dir)
    assert pairs(examples) == rows.DAPO
    assert [e.info["index"] for e in examples] == [0, 1, 2] and examples[0].solution is None


def test_aime_and_amc_mapping(tfds_dir):
    aime24 = load_fixture("aime24", tfds_dir=tfds_dir)
    assert [e.answer for e in aime24] == ["025", "116", "073"]  # answers stay text ("025" is not 25)
    assert aime24[0].info["id"] == "2024-I-2"
    aime25 = load_fixture("aime25", tfds_dir=tfds_dir)
    assert aime25[1].prompt == rows.AIME25[1][1] and aime25[1].info["id"] == "I-3"
    amc = load_fixture("amc23", "test", tfds_dir=tfds_dir)
    assert [e.answer for e in amc] == ["27", "36", "45"]  # 27.0 -> "27"


def test_countdown_mapping_and_slices(tfds_dir):
    examples = load_fixture("countdown", tfds_dir=tfds_dir)
    assert [(e.info["numbers"], e.info["target"]) for e in examples] == rows.COUNTDOWN
    assert examples[0].answer == "98" and "[44, 19, 35]" in examples[0].prompt
    assert examples[0].info["answer_type"] == "expression"
    tail = load_fixture("countdown", "train[-2:]", tfds_dir=tfds_dir)
    assert [e.info["target"] for e in tail] == [10, 28]
    source = load_source("countdown", "train", data_dir=FIXTURES, tfds_dir=tfds_dir)
    assert source[-1] == examples[-1] and source[1:3] == examples[1:3]
    with pytest.raises(IndexError):
        source[6]


MATH500_PAIRS = [(p, a) for p, a, *_ in rows.MATH500]
AIME24_PAIRS = [(p, a) for _, p, a in rows.AIME24]


@pytest.mark.parametrize("layout, name, fields, expected", [
    ("capitalised", "math500", "", MATH500_PAIRS),
    ("capitalised", "aime24", "", [(p, str(int(a))) for p, a in AIME24_PAIRS]),  # Answer is an int there
    ("ref_answer", "amc23", "", [(q, str(int(a))) for _, q, a in rows.AMC23]),
    ("ttrl", "aime25", "", [(q, a) for _, q, a in rows.AIME25]),
    ("ttrl", "math500", "", MATH500_PAIRS),
    ("verl", "math500", "", MATH500_PAIRS),  # chat prompt, verl's boxed suffix removed
    ("verl", "aime24", "", AIME24_PAIRS),
    ("mapped", "math500", MAPPED, MATH500_PAIRS),
])
def test_math_layouts_load_the_same_examples(tfds_dir, layout, name, fields, expected):
    examples = load_fixture(name, tfds_dir=tfds_dir, root=LAYOUTS / layout, fields=fields)
    assert pairs(examples) == expected
    assert all(e.info["answer_type"] == "math" for e in examples)
    if name == "math500" and layout in ("capitalised", "mapped"):
        assert [e.solution for e in examples] == [s for _, _, s, *_ in rows.MATH500]


@pytest.mark.parametrize("layout", ["tinyzero", "verl"])
def test_countdown_layouts(tfds_dir, layout):
    train = load_fixture("countdown", tfds_dir=tfds_dir, root=LAYOUTS / layout)
    plain = load_fixture("countdown", tfds_dir=tfds_dir)
    assert pairs(train) == pairs(plain[:len(train)])  # the prompt is rebuilt from numbers and target
    assert [(e.info["numbers"], e.info["target"]) for e in train] == rows.COUNTDOWN[:len(train)]
    if layout == "verl":
        test = load_fixture("countdown", "test", tfds_dir=tfds_dir, root=LAYOUTS / layout)
        assert [e.info["target"] for e in test] == [t for _, t in rows.COUNTDOWN[4:]]


@pytest.mark.parametrize("layout", ["verl", "dapo_label"])
def test_dapo_conflicting_repeat_is_reported_and_the_first_kept(tmp_path, layout):
    for attempt in range(2):  # the report is kept with the prepared files: shown again on a cached load
        with pytest.warns(UserWarning) as record:
            examples = load_fixture("dapo17k", tfds_dir=tmp_path, root=LAYOUTS / layout)
        [message] = [str(w.message) for w in record if "different answer" in str(w.message)]
        conflict_row = 6 if layout == "verl" else 3  # verl: the file holds every problem twice, then the repeat
        assert message.startswith("dataset 'dapo17k': 1 record(s) repeat an earlier prompt with a different "
                                  "answer; only the first record of each prompt is kept; first 1: "
                                  f"record {conflict_row} 'How many positive integers")
        assert f"record {conflict_row} " in message and "answer '40' vs '39' in record 2" in message
        assert pairs(examples) == rows.DAPO  # wrapper stripped, repeats dropped, first answer kept
    assert examples[0].info.get("data_source") == ("math_dapo" if layout == "verl" else None)


def test_benchmark_conflict_keeps_every_record(tmp_path):
    (tmp_path / "aime24").mkdir()
    (tmp_path / "aime24" / "test.jsonl").write_text('{"problem": "A?", "answer": "1"}\n{"problem": "A?", '
                                                    '"answer": "2"}\n{"problem": "A?", "answer": "1"}\n')
    with pytest.warns(UserWarning, match=r"'aime24': 1 record\(s\).*every record is kept \(a benchmark\)"):
        examples = load_dataset("aime24", data_dir=tmp_path)
    assert [e.answer for e in examples] == ["1", "2", "1"]


def test_missing_file_error_names_path_formats_fields_and_env_var(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("aime25", data_dir=tmp_path)
    message = str(err.value)
    folder = tmp_path / "aime25"
    assert str(folder / "test.jsonl") in message and str(folder / "aime_2025.parquet") in message
    assert ".jsonl" in message and ".parquet" in message and "answer (answer / Answer / ref_answer" in message
    assert f"{DATA_DIR_ENV}=/path/to/data" in message and "data.fields=question=Problem" in message
    assert "data_dir=" not in message  # not a CLI key
    with pytest.raises(FileNotFoundError, match=r"(?s)split 'test'.*countdown/test\.jsonl"):
        load_fixture("countdown", "test", tfds_dir=tmp_path)


def test_env_var_sets_data_root(tmp_path, monkeypatch):
    (tmp_path / "amc23").mkdir()
    (tmp_path / "amc23" / "amc23.json").write_text(json.dumps({"question": {"0": "Q?"}, "answer": {"0": 5}}))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    [example] = load_dataset("amc23", tfds_dir=tmp_path / "out")  # column-oriented JSON works too
    assert (example.prompt, example.answer) == ("Q?", "5")


def test_data_fields_from_the_command_line(tmp_path, monkeypatch):
    (tmp_path / "math500").symlink_to(LAYOUTS / "mapped" / "math500")
    (tmp_path / "aime24").symlink_to(FIXTURES / "aime24")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    config = apply_overrides(load_config("tiny_gt"), ["data.task=", "data.dataset=math500", f"data.fields={MAPPED}",
                                                      "data.val_dataset=aime24", "data.val_size=2"])
    assert config.data.fields == MAPPED
    source = train_source(config.data, batch_size=2, seed=0)
    assert sorted(pairs(source.pool)) == sorted(MATH500_PAIRS)
    assert pairs(validation_examples(config.data)) == AIME24_PAIRS[:2]  # the built-in names still work


def test_original_dapo_parquet_and_wrappers(tmp_path):
    problems = [("Find $1+1$.", "2"), ("Find $2\\cdot 3$.", "6"), ("Find $1+1$.", "2")]
    table = pa.Table.from_pylist([
        {"data_source": "math_dapo", "prompt": [{"role": "user", "content": rows.DAPO_WRAP.format(p)}],
         "reward_model": {"ground_truth": a, "style": "rule"}} for p, a in problems])
    (tmp_path / "dapo17k").mkdir()
    pq.write_table(table, tmp_path / "dapo17k" / "dapo-math-17k.parquet")
    examples = load_dataset("dapo17k", data_dir=tmp_path)  # default tfds dir: <root>/_tfds
    assert pairs(examples) == problems[:2]
    assert list((tmp_path / "_tfds").iterdir())
    assert strip_dapo_wrapper("  plain problem ") == "plain problem"
    assert strip_dapo_wrapper("Find $x$." + rows.VERL_SUFFIX) == "Find $x$."


def test_hf_shards_are_concatenated(tmp_path):
    (tmp_path / "countdown").mkdir()
    for i, shard in enumerate([[{"nums": [1, 2, 3], "target": 6}], [{"nums": [5, 5, 2], "target": 12}]]):
        pq.write_table(pa.Table.from_pylist(shard), tmp_path / "countdown" / f"train-0000{i}-of-00002.parquet")
    examples = load_dataset("countdown", data_dir=tmp_path, tfds_dir=tmp_path / "out")
    assert [e.info["target"] for e in examples] == [6, 12] and [e.info["index"] for e in examples] == [0, 1]


def test_rebuilds_when_the_file_or_the_mapping_changes(tmp_path):
    path = tmp_path / "aime24" / "test.jsonl"
    path.parent.mkdir()
    path.write_text('{"problem": "A?", "answer": "1", "final": "7"}\n')
    assert [e.answer for e in load_dataset("aime24", data_dir=tmp_path)] == ["1"]
    assert [e.answer for e in load_dataset("aime24", data_dir=tmp_path, fields="answer=final")] == ["7"]
    path.write_text('{"problem": "A?", "answer": "1"}\n{"problem": "B?", "answer": "2"}\n')
    assert [e.answer for e in load_dataset("aime24", data_dir=tmp_path)] == ["1", "2"]


MATH_ACCEPTED = ("accepted names: answer, Answer, ref_answer, label, ground_truth, reward_model.ground_truth; "
                 "the record has: problem")


@pytest.mark.parametrize("content, fields, pattern", [
    ('{"problem": "A?"}\n', "", r"test\.jsonl: record 0: no answer field \(" + MATH_ACCEPTED.replace(".", r"\.")),
    ('{"problem": "A?", "answer": "1"}\n{"answer": "3", "id": 2}\n', "",
     r"test\.jsonl: record 1: no question field \(accepted names: problem, Problem, question, Question, prompt; "
     r"the record has: answer, id\)"),
    ('{"problem": "A?"}\n', "answer=gold", r"record 0: no answer field \(accepted names: gold, answer, Answer"),
    ('{"problem": "A?", "answer": "1"}\n{oops\n', "", r"test\.jsonl: line 2 is not valid JSON"),
])
def test_bad_records_name_file_record_all_names_and_the_mapping(tmp_path, content, fields, pattern):
    (tmp_path / "aime24").mkdir()
    (tmp_path / "aime24" / "test.jsonl").write_text(content)
    with pytest.raises(ValueError, match=pattern) as err:
        load_dataset("aime24", data_dir=tmp_path, fields=fields)
    assert "\n" not in str(err.value)
    if "record" in pattern:
        assert str(err.value).endswith("data.fields=question=Problem,answer=Answer")


def test_bad_countdown_records(tmp_path):
    (tmp_path / "countdown").mkdir()
    path = tmp_path / "countdown" / "train.json"
    path.write_text(json.dumps([{"nums": "1,2", "target": 3}]))
    with pytest.raises(ValueError, match=r"train\.json: record 0: the numbers must be a list of integers"):
        load_dataset("countdown", data_dir=tmp_path)
    path.write_text(json.dumps([{"numbers": [1, 2], "goal": 3}]))
    with pytest.raises(ValueError, match=r"record 0: no target field \(accepted names: target, "
                                         r"reward_model\.ground_truth\.target; the record has: numbers, goal\)"):
        load_dataset("countdown", data_dir=tmp_path)
    assert load_dataset("countdown", data_dir=tmp_path, fields="target=goal")[0].info["target"] == 3


@pytest.mark.parametrize("text, pattern", [
    ("question", r"data\.fields='question': 'question' is not ROLE=NAME"),
    ("question=Problem,=x", r"'=x' is not ROLE=NAME"),
    ("problem=Problem", r"unknown role 'problem'; roles: question, answer, solution, numbers, target"),
])
def test_bad_data_fields(text, pattern):
    with pytest.raises(ValueError, match=pattern):
        parse_fields(text)


def test_unknown_dataset_and_split():
    with pytest.raises(KeyError, match="unknown dataset 'gsm8k'; known datasets: dapo17k, math500"):
        load_dataset("gsm8k")
    with pytest.raises(ValueError, match=r"dataset 'math500' has splits \['test'\], got split 'train'"):
        load_dataset("math500", "train", data_dir=FIXTURES)
