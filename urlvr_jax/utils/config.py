"""Experiment configs: ``get_config()`` files under ``configs/``, ``key=value`` overrides, CLI parsing.

A config file is a Python module with ``get_config(arg=None) -> ml_collections.ConfigDict``. It is
selected by path (``configs/cpu_default.py``) or by bare name (``cpu_default``, looked up in the repo's
``configs/`` folder, or in the copy an installed wheel ships as ``urlvr_jax/configs``); ``name:arg`` passes ``arg``
to ``get_config``. Configs come back locked, so a new (misspelt) field can neither be added by an override nor by
code.

Override values are parsed as Python literals (``ast.literal_eval``, else the raw string) and coerced to
the type of the field they replace: int -> float is fine; bools accept true/false/yes/no/1/0; a None
field accepts anything; tuple/list fields accept a literal or ``a,b,c``; str fields keep the raw text.
"""

from __future__ import annotations

import ast
import copy
import difflib
import importlib.util
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import ml_collections

from urlvr_jax.model.config import ATTENTIONS, KV_LAYOUTS
from urlvr_jax.utils.errors import UserError  # (defined there; importable from here as always)
from urlvr_jax.utils.metrics_log import parse_loggers

REPO_ROOT = Path(__file__).resolve().parents[2]
_PACKAGED_CONFIGS = Path(__file__).resolve().parents[1] / "configs"  # the copy a wheel ships (setup.py)
CONFIGS_DIR = _PACKAGED_CONFIGS if _PACKAGED_CONFIGS.is_dir() else REPO_ROOT / "configs"

_TRUE = {"true", "yes", "on", "1"}


_FALSE = {"false", "no", "off", "0"}


def available_configs(configs_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the config files in ``configs_dir`` (default: the repo's ``configs/``), without ``.py``."""
    folder = Path(CONFIGS_DIR if configs_dir is None else configs_dir)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_"))


def _resolve(name_or_path: str, configs_dir: Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".py" or os.sep in name_or_path or "/" in name_or_path:
        path = candidate if candidate.is_absolute() or candidate.exists() else REPO_ROOT / candidate
    else:
        path = configs_dir / f"{name_or_path}.py"
    if not path.is_file():
        names = available_configs(configs_dir)
        hint = difflib.get_close_matches(candidate.stem, names, n=1)
        raise FileNotFoundError(
            f"config '{name_or_path}' not found (looked for {path}); available configs in "
            f"{configs_dir}: {', '.join(names) or '(none)'}" + (f". Did you mean '{hint[0]}'?" if hint else "")
        )
    return path


def load_config(path_or_name: str, configs_dir: str | os.PathLike | None = None) -> ml_collections.ConfigDict:
    """Load ``get_config()`` from a config file path or a name in ``configs_dir``; returns it locked."""
    spec_str, _, arg = str(path_or_name).partition(":")
    path = _resolve(spec_str, Path(CONFIGS_DIR if configs_dir is None else configs_dir))
    module_name = f"_urlvr_config_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import config file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    get_config = getattr(module, "get_config", None)
    if not callable(get_config):
        raise AttributeError(f"config file {path} defines no get_config() function")
    cfg = get_config(arg) if arg else get_config()
    if isinstance(cfg, dict) and not isinstance(cfg, ml_collections.ConfigDict):
        cfg = ml_collections.ConfigDict(cfg)
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise TypeError(f"get_config() in {path} returned {type(cfg).__name__}, expected an ml_collections.ConfigDict")
    from urlvr_jax.rl.conventions import apply_conventions  # (imports nothing heavy)

    apply_conventions(cfg)  # algo.conventions=verl|trl sets its fields
    cfg.lock()
    return cfg


def _parse_literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _coerce_scalar(key: str, text: str, current: Any) -> Any:
    """Coerce override text to the type of the scalar ``current``; raise ValueError naming ``key``."""
    value = _parse_literal(text)
    expected = type(current)

    def mismatch() -> ValueError:
        return ValueError(f"config key '{key}' expects {expected.__name__} (current value {current!r}); got {text!r}")

    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise mismatch()
    if isinstance(current, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise mismatch()
    if isinstance(current, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(text)  # also "nan", "inf", "-inf"
        except ValueError:
            raise mismatch() from None
    if isinstance(current, str):
        return value if isinstance(value, str) else text
    if current is None:
        return value
    raise ValueError(f"config key '{key}' has type {expected.__name__}, which cannot be set from the command line")


def _coerce_sequence(key: str, text: str, current: tuple | list) -> tuple | list:
    value = _parse_literal(text)
    if isinstance(value, (tuple, list)):
        items = list(value)
    elif text.strip() == "":
        items = []
    elif "," in text:
        items = [_parse_literal(part.strip()) for part in text.split(",")]
    else:
        items = [value]
    element_types = {type(x) for x in current}
    if len(element_types) == 1 and current[0] is not None:
        prototype = current[0]
        if isinstance(prototype, (bool, int, float, str)):
            items = [_coerce_scalar(f"{key}[{i}]", x if isinstance(x, str) else repr(x), prototype)
                     for i, x in enumerate(items)]
    return type(current)(items)


def _unknown_key(full_key: str, part: str, level: str, valid: list[str]) -> ValueError:
    hint = difflib.get_close_matches(part, valid, n=1)
    where = f"'{level}'" if level else "the top level"
    return ValueError(
        f"unknown config key '{full_key}': '{part}' is not a field of {where}; valid keys there: "
        f"{', '.join(sorted(valid))}" + (f". Did you mean '{hint[0]}'?" if hint else "")
    )


def set_override(cfg: ml_collections.ConfigDict, key: str, text: str) -> None:
    """Set the dotted ``key`` of ``cfg`` from override text (see module docstring)."""
    parts = key.split(".")
    node = cfg
    for depth, part in enumerate(parts):
        level = ".".join(parts[:depth])
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            valid = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
            raise _unknown_key(key, part, level, valid)
        if depth < len(parts) - 1:
            node = node[part]
    current = node[parts[-1]]
    if isinstance(current, ml_collections.ConfigDict):
        raise ValueError(f"config key '{key}' is a group, not a value; set one of its fields: "
                         f"{', '.join(f'{key}.{k}' for k in sorted(current.keys()))}")
    if isinstance(current, (tuple, list)):
        value = _coerce_sequence(key, text, current)
    else:
        value = _coerce_scalar(key, text, current)
    try:
        node[parts[-1]] = value
    except (TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"config key '{key}': cannot set it to {text!r} ({err})") from None


def apply_overrides(cfg: ml_collections.ConfigDict, overrides: Sequence[str]) -> ml_collections.ConfigDict:
    """Apply ``dotted.key=value`` overrides to a copy of ``cfg``; the copy is returned locked.

    All overrides are checked before any takes effect: on an error the input config is unchanged.
    """
    out = copy.deepcopy(cfg)
    out.lock()
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip().removeprefix("--")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form dotted.key=value")
        set_override(out, key, text)
    from urlvr_jax.rl.conventions import apply_conventions

    explicit = [item.partition("=")[0] for item in overrides]
    return apply_conventions(out, explicit)  # the preset's fields, except those overridden here


def parse_cli(
    argv: Sequence[str] | None = None, default_config: str | None = None
) -> tuple[ml_collections.ConfigDict, list[str]]:
    """Parse ``--config NAME_OR_PATH [key=value | --key=value]... [--flag]...``.

    Returns the overridden, locked config and the bare ``--flag`` arguments (no ``=``) for the caller
    to interpret. Any other argument is an error.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    config_name = default_config
    overrides: list[str] = []
    extra: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--config":
            if i + 1 >= len(args):
                raise ValueError("--config needs a value: a config name or a path to a .py file")
            config_name = args[i + 1]
            i += 2
            continue
        if arg.startswith("--config="):
            config_name = arg.split("=", 1)[1]
        elif "=" in arg:
            overrides.append(arg)
        elif arg.startswith("--"):
            extra.append(arg)
        else:
            raise ValueError(f"unexpected argument {arg!r}: overrides are written key=value (or --key=value)")
        i += 1
    if config_name is None:
        raise ValueError(f"no --config given; available configs: {', '.join(available_configs()) or '(none)'}")
    return apply_overrides(load_config(config_name), overrides), extra


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return repr(value)


def config_to_dict(cfg: ml_collections.ConfigDict) -> dict:
    """Plain JSON-able dict of ``cfg`` (tuples become lists; other objects their repr)."""
    return _jsonable(cfg.to_dict())


def save_config(cfg: ml_collections.ConfigDict, path: str | os.PathLike) -> str:
    """Write ``cfg`` as indented JSON to ``path`` atomically (temp file + rename); returns the path."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(config_to_dict(cfg), f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path


# Range checks run before anything is built: (keys, test, what the value must be). Missing keys are skipped.
_POSITIVE_INTS = ("rollout.n", "rollout.prompts_per_step", "rollout.max_new_tokens", "rollout.max_prompt_len",
                  "train.steps", "train.checkpoint_every", "train.keep_checkpoints", "val.k", "algo.ppo_epochs",
                  "algo.mini_batch_prompts", "reward.verify_max_new_tokens")
_NON_NEGATIVE_INTS = ("rollout.n_votes", "rollout.top_k", "rollout.max_rows_per_chunk", "rollout.slots",
                      "algo.micro_batch_rollouts", "train.max_nonfinite_steps", "train.logprob_chunk", "val.every",
                      "val.max_new_tokens",
                      "data.val_size", "data.pool_size", "model.attention_chunk")
_POSITIVE_FLOATS = ("optim.lr", "rollout.temperature", "val.temperature", "reward.verify_temperature", "algo.std_eps")
_NON_NEGATIVE_FLOATS = ("optim.grad_clip", "optim.weight_decay", "algo.eps_low", "algo.eps_high", "algo.kl_coef",
                        "algo.dual_clip_c", "train.max_param_norm")
_UNIT_INTERVAL = {"rollout.top_p": "in (0, 1]", "val.top_p": "in (0, 1]", "optim.b1": "in [0, 1)",
                  "optim.b2": "in [0, 1)", "optim.warmup_ratio": "in [0, 1]", "reward.teacher_ema": "in [0, 1]"}
_IN_RANGE = {"in (0, 1]": lambda v: 0 < v <= 1, "in [0, 1)": lambda v: 0 <= v < 1, "in [0, 1]": lambda v: 0 <= v <= 1}
_MISSING = object()


def _lookup(cfg: ml_collections.ConfigDict, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_config(cfg: ml_collections.ConfigDict) -> None:
    """Refuses out-of-range values up front with a :class:`UserError` naming the config key: counts and lengths
    must be integers >= 1 (or >= 0 where 0 means "off"), rates, temperatures and epsilons finite and positive
    (or non-negative where 0 means "off"), probabilities inside their interval; ``run_dir`` must not be a file."""
    checks = ([(k, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1")
               for k in _POSITIVE_INTS]
              + [(k, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0")
                 for k in _NON_NEGATIVE_INTS]
              + [(k, lambda v: _is_number(v) and math.isfinite(v) and v > 0, "a finite number > 0")
                 for k in _POSITIVE_FLOATS]
              + [(k, lambda v: _is_number(v) and math.isfinite(v) and v >= 0, "a finite number >= 0")
                 for k in _NON_NEGATIVE_FLOATS]
              + [(k, lambda v, r=r: _is_number(v) and _IN_RANGE[r](v), f"a number {r}")
                 for k, r in _UNIT_INTERVAL.items()]
              + [(k, lambda v: _is_number(v) and math.isfinite(v), "a finite number")
                 for k in ("algo.entropy_coef", "train.collapse_threshold")])
    for key, ok, expected in checks:
        value = _lookup(cfg, key)
        if value is not _MISSING and not ok(value):
            raise UserError(f"config {key}={value!r} must be {expected}")
    n, votes = _lookup(cfg, "rollout.n"), _lookup(cfg, "rollout.n_votes")
    if votes is not _MISSING and n is not _MISSING and votes and votes < n:
        raise UserError(f"config rollout.n_votes={votes} must be 0 or >= rollout.n={n}")
    attention = _lookup(cfg, "model.attention")
    if attention is not _MISSING and attention not in ATTENTIONS:
        raise UserError(f"config model.attention={attention!r} must be one of {', '.join(ATTENTIONS)}")
    kv_layout = _lookup(cfg, "model.kv_layout")
    if kv_layout is not _MISSING and kv_layout not in KV_LAYOUTS:
        raise UserError(f"config model.kv_layout={kv_layout!r} must be one of {', '.join(KV_LAYOUTS)}")
    batching, slots = _lookup(cfg, "rollout.batching"), _lookup(cfg, "rollout.slots")
    if batching is not _MISSING and batching not in ("auto", "static", "continuous"):
        raise UserError(f"config rollout.batching={batching!r} must be auto, static or continuous")
    if batching == "static" and slots:
        raise UserError(f"config rollout.slots={slots} needs rollout.batching=continuous or auto (it is static)")
    clip = _lookup(cfg, "algo.dual_clip_c")
    if clip is not _MISSING and clip and clip <= 1:
        raise UserError(f"config algo.dual_clip_c={clip!r} must be 0 (off) or > 1")
    loggers = _lookup(cfg, "train.loggers")
    if loggers is not _MISSING:
        parse_loggers(loggers)  # an unknown name, or wandb not installed: one line before the run builds anything
    run_dir = _lookup(cfg, "run_dir")
    if isinstance(run_dir, str) and os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise UserError(f"config run_dir={run_dir!r} is a file, not a directory; choose another run_dir")
