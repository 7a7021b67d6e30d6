"""Plug-ins through the command line: a reward from ``--plugin`` and an advantage estimator from an installed
distribution's entry point, both written to a temporary folder, train a tiny run (with TRL's conventions and
micro-batches, so that path runs end to end too); a plug-in that cannot be imported is one clear error."""

from __future__ import annotations

import os

import pytest
from loop_fixtures import cli_env, run_cli, train_cmd

from urlvr_jax import plugins
from urlvr_jax.train import main
from urlvr_jax.utils.metrics_log import read_metrics

REWARD_PLUGIN = '''
import numpy as np

from urlvr_jax.rewards import register_reward


@register_reward("first_of_group", kind="control")
def first_of_group(batch, bonus=1.0):
    """bonus for the first rollout of each prompt, 0 for the others."""
    first = np.r_[True, batch.group_ids[1:] != batch.group_ids[:-1]]
    return np.where(first, bonus, 0.0).astype(np.float32)
'''

ADVANTAGE_PLUGIN = '''
import jax.numpy as jnp

from urlvr_jax.rl.advantages import group_stats, register_advantage_fn


@register_advantage_fn("sign")
def sign_advantages(rewards, group_ids, num_groups):
    """+1 above the group mean, -1 below: every |A| is 1 in a group with two distinct rewards."""
    _, mean, _ = group_stats(rewards, group_ids, num_groups)
    return jnp.sign(rewards - mean)
'''

TINY = ("rollout.prompts_per_step=4", "algo.mini_batch_prompts=4", "rollout.n=4", "rollout.max_new_tokens=4",
        "rollout.max_prompt_len=8", "data.val_size=4", "val.every=0", "train.steps=2", "train.checkpoint_every=2",
        "algo.report_ref_kl=false")


def test_plugin_reward_and_entry_point_advantage_train_from_the_cli(tmp_path):
    (tmp_path / "my_rewards.py").write_text(REWARD_PLUGIN)
    (tmp_path / "sign_advantage.py").write_text(ADVANTAGE_PLUGIN)
    dist = tmp_path / "urlvr_sign_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: urlvr-sign-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{plugins.ENTRY_POINT_GROUP}]\nsign = sign_advantage\n")
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    env["XLA_FLAGS"] = "--xla_backend_optimization_level=0"  # compiles faster; the numbers checked are exact anyway
    run_dir = tmp_path / "run"
    cmd = train_cmd("tiny_gt", "--plugin", "my_rewards", *TINY, "reward.name=first_of_group", "algo.advantage=sign",
                    "algo.conventions=trl", "algo.micro_batch_rollouts=8", f"run_dir={run_dir}")
    result = run_cli(cmd, env)
    assert result.returncode == 0, result.stderr[-3000:]
    train = [r for r in read_metrics(str(run_dir)) if "train/loss" in r]
    assert [r["step"] for r in train] == [1, 2]
    for record in train:
        assert record["train/proxy_reward"] == pytest.approx(1.0 / 4)  # the plug-in's reward
        assert record["train/advantage_abs"] == pytest.approx(1.0)  # the entry point's estimator (grpo: 0.75)


def test_a_plugin_that_cannot_be_imported_is_one_clear_error(tmp_path):
    with pytest.raises(plugins.PluginError, match=r"--plugin no_such_plugin: cannot import it \(ModuleNotFoundError"):
        main(["--config", "tiny_gt", "--plugin", "no_such_plugin"])
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(plugins.PluginError,
                       match=r"config plugins: .*broken.py: cannot import it \(RuntimeError: boom"):
        main(["--config", "tiny_gt", f"plugins={broken}"])
    with pytest.raises(plugins.PluginError, match="--plugin needs a value"):
        main(["--config", "tiny_gt", "--plugin"])


def test_plugin_flags_are_split_from_the_overrides():
    names, rest = plugins.split_plugin_flags(["--config", "x", "--plugin", "a,b", "k=v", "--plugin=c", "--debug"])
    assert names == ["a", "b", "c"] and rest == ["--config", "x", "k=v", "--debug"]
