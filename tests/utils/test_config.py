"""Config loading, overrides with type coercion, unknown-key errors and CLI parsing."""

import json
import textwrap

import ml_collections
import pytest

from urlvr_jax.utils import config as C

CONFIG_SRC = textwrap.dedent(
    """
    import ml_collections

    def get_config(arg=None):
        cfg = ml_collections.ConfigDict()
        cfg.seed = 0
        cfg.name = "run" if arg is None else arg
        cfg.debug = False
        cfg.resume_from = None
        cfg.model = ml_collections.ConfigDict(dict(vocab=32, dtype="float32"))
        cfg.optim = ml_collections.ConfigDict(dict(lr=1e-3, betas=(0.9, 0.99), schedule="cosine"))
        cfg.rl = ml_collections.ConfigDict(dict(group_size=4, tasks=("gsm8k",), reward=dict(kind="majority")))
        return cfg
    """
)


@pytest.fixture()
def configs_dir(tmp_path):
    (tmp_path / "tiny.py").write_text(CONFIG_SRC)
    (tmp_path / "broken.py").write_text("X = 1\n")
    return tmp_path


@pytest.fixture()
def cfg(configs_dir):
    return C.load_config("tiny", configs_dir=configs_dir)


def test_load_by_name_path_and_arg(configs_dir, cfg):
    assert cfg.model.vocab == 32 and cfg.is_locked
    by_path = C.load_config(str(configs_dir / "tiny.py"))
    assert by_path.to_dict() == cfg.to_dict()
    assert C.load_config("tiny:exp7", configs_dir=configs_dir).name == "exp7"
    with pytest.raises(AttributeError):
        cfg.not_a_field = 3  # locked: code typos fail too


def test_load_errors(configs_dir):
    with pytest.raises(FileNotFoundError, match=r"'tinny' not found.*broken, tiny.*Did you mean 'tiny'"):
        C.load_config("tinny", configs_dir=configs_dir)
    with pytest.raises(AttributeError, match=r"broken\.py defines no get_config"):
        C.load_config("broken", configs_dir=configs_dir)


def test_overrides_coerce_types(cfg):
    out = C.apply_overrides(cfg, [
        "seed=3", "optim.lr=1", "debug=true", "name=123", "resume_from=/tmp/x", "optim.betas=0.8,0.95",
        "rl.tasks=gsm8k,math", "--model.vocab=1e3", "rl.reward.kind='self_certainty'", "optim.schedule=",
    ])
    assert out.seed == 3
    assert out.optim.lr == 1.0 and isinstance(out.optim.lr, float)
    assert out.debug is True
    assert out.name == "123"
    assert out.resume_from == "/tmp/x"
    assert out.optim.betas == (0.8, 0.95)
    assert out.rl.tasks == ("gsm8k", "math")
    assert out.model.vocab == 1000 and isinstance(out.model.vocab, int)
    assert out.rl.reward.kind == "self_certainty"
    assert out.optim.schedule == ""
    assert out.is_locked
    assert cfg.seed == 0 and cfg.optim.betas == (0.9, 0.99)  # input untouched
    assert C.apply_overrides(cfg, ["debug=0", "optim.betas=[0.5, 0.6]", "rl.tasks=math"]).rl.tasks == ("math",)


@pytest.mark.parametrize("override, pattern", [
    ("optim.lrr=1", r"unknown config key 'optim.lrr'.*'optim'.*betas, lr, schedule.*Did you mean 'lr'"),
    ("sed=1", r"unknown config key 'sed'.*top level.*Did you mean 'seed'"),
    ("rl.reward.knd=x", r"'rl.reward'.*valid keys there: kind"),
    ("seed.x=1", r"unknown config key 'seed.x'"),
    ("seed=abc", r"'seed' expects int.*'abc'"),
    ("seed=1.5", r"'seed' expects int"),
    ("debug=maybe", r"'debug' expects bool"),
    ("optim.lr=fast", r"'optim.lr' expects float"),
    ("optim.betas=a,b", r"'optim.betas\[0\]' expects float"),
    ("optim=1", r"'optim' is a group.*optim.lr"),
    ("seed", r"not of the form"),
])
def test_override_errors(cfg, override, pattern):
    with pytest.raises(ValueError, match=pattern):
        C.apply_overrides(cfg, ["seed=5", override])
    assert cfg.seed == 0


def test_parse_cli(configs_dir, monkeypatch):
    monkeypatch.setattr(C, "CONFIGS_DIR", configs_dir)
    cfg, extra = C.parse_cli(["--config", "tiny", "seed=2", "--optim.lr=0.5", "--resume"])
    assert (cfg.seed, cfg.optim.lr, extra) == (2, 0.5, ["--resume"])
    cfg, _ = C.parse_cli(["--config=tiny"])
    assert cfg.seed == 0
    with pytest.raises(ValueError, match="unexpected argument '0.1'"):
        C.parse_cli(["--config", "tiny", "--lr", "0.1"])
    with pytest.raises(ValueError, match=r"no --config given; available configs: broken, tiny"):
        C.parse_cli(["seed=1"])


def test_save_config_roundtrip(cfg, tmp_path):
    path = C.save_config(C.apply_overrides(cfg, ["optim.lr=inf"]), tmp_path / "run" / "config.json")
    data = json.loads(open(path).read())
    assert data["optim"]["betas"] == [0.9, 0.99]
    assert data["optim"]["lr"] == "inf"
    assert data["rl"]["reward"] == {"kind": "majority"}
    assert isinstance(C.config_to_dict(ml_collections.ConfigDict({"a": (1, 2)}))["a"], list)


@pytest.mark.parametrize("override, message", [
    ("rollout.n=0", "config rollout.n=0 must be an integer >= 1"),
    ("rollout.n=-3", "config rollout.n=-3 must be an integer >= 1"),
    ("rollout.max_new_tokens=0", "config rollout.max_new_tokens=0 must be an integer >= 1"),
    ("rollout.prompts_per_step=0", "config rollout.prompts_per_step=0 must be an integer >= 1"),
    ("rollout.n_votes=-1", "config rollout.n_votes=-1 must be an integer >= 0"),
    ("rollout.n_votes=2", "config rollout.n_votes=2 must be 0 or >= rollout.n=8"),
    ("optim.lr=nan", "config optim.lr=nan must be a finite number > 0"),
    ("optim.lr=0", "config optim.lr=0.0 must be a finite number > 0"),
    ("optim.lr=inf", "config optim.lr=inf must be a finite number > 0"),
    ("optim.grad_clip=-1", "config optim.grad_clip=-1.0 must be a finite number >= 0"),
    ("rollout.temperature=0", "config rollout.temperature=0.0 must be a finite number > 0"),
    ("val.temperature=nan", "config val.temperature=nan must be a finite number > 0"),
    ("algo.std_eps=0", "config algo.std_eps=0.0 must be a finite number > 0"),
    ("rollout.top_p=1.5", "config rollout.top_p=1.5 must be a number in (0, 1]"),
    ("optim.b2=1", "config optim.b2=1.0 must be a number in [0, 1)"),
    ("algo.dual_clip_c=0.5", "config algo.dual_clip_c=0.5 must be 0 (off) or > 1"),
    ("train.max_param_norm=-1", "config train.max_param_norm=-1.0 must be a finite number >= 0"),
])
def test_validate_config_names_the_key(override, message):
    base = C.load_config("cpu_default")
    C.validate_config(base)  # the shipped config passes
    with pytest.raises(C.UserError) as err:
        C.validate_config(C.apply_overrides(base, [override]))
    assert str(err.value) == message


def test_validate_config_refuses_a_run_dir_that_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("")
    cfg = C.apply_overrides(C.load_config("cpu_default"), [f"run_dir={path}"])
    with pytest.raises(C.UserError, match=r"config run_dir='.*file' is a file, not a directory"):
        C.validate_config(cfg)
