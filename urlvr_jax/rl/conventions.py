"""Peers' conventions: ``algo.conventions=verl|trl`` sets every field on which verl and TRL 1.16 disagree.

The GRPO objective is the same formula in verl, TRL and here, but four small choices differ, so one batch gives
different advantages, losses and gradients unless they agree:

=============================  ===========================  ==================================================
field (``algo.*``)             ``verl`` (our defaults)      ``trl`` (TRL 1.16 ``GRPOTrainer``)
=============================  ===========================  ==================================================
``std_eps``                    1e-6                         1e-4 (``advantages / (std_rewards + 1e-4)``)
``kl_ratio``                   false                        true (``use_bias_correction_kl``, default True: the
                                                            per-token k3 KL times the importance ratio coef_1)
``count_empty_rows``           false (rows with no valid    true (``grpo``: ``.mean()`` over every row;
                               token do not count)          ``dr_grpo``: ``per_token_loss.size(0)``)
``normalize_per_micro_batch``  false (one denominator per   true (``bnpo``: each micro-batch's token mean, then
                               mini-batch)                  divided by ``gradient_accumulation_steps``)
=============================  ===========================  ==================================================

``dr_grpo`` (``loss_agg_mode=seq-mean-token-sum-norm``) divides by TRL's ``max_completion_length`` in both: the loop
passes ``rollout.max_new_tokens`` as the loss's ``norm_length``. Called from the functional API,
:class:`~urlvr_jax.rl.losses.GRPOLossConfig` ``norm_length=None`` means the padded width T instead; pass
``norm_length=max_new_tokens`` there to match. TRL's loss types map onto ``loss_agg_mode``: ``grpo`` =
``seq-mean-token-mean``, ``bnpo`` = ``token-mean`` with ``trl``, ``dapo`` = ``token-mean`` with ``verl``,
``dr_grpo`` = ``seq-mean-token-sum-norm``.

A preset is resolved when a config is loaded or overridden (:func:`urlvr_jax.utils.config.load_config` and
``apply_overrides``, so on the command line too): it sets its fields, except those given as ``key=value`` on the
same command line, which win. ``algo.conventions=""`` leaves every field as set. This module imports nothing heavy.
"""

from __future__ import annotations

from typing import Iterable

CONVENTIONS: dict[str, dict[str, object]] = {
    "verl": {"std_eps": 1e-6, "kl_ratio": False, "count_empty_rows": False, "normalize_per_micro_batch": False},
    "trl": {"std_eps": 1e-4, "kl_ratio": True, "count_empty_rows": True, "normalize_per_micro_batch": True},
}


def convention_fields(name: str) -> dict[str, object]:
    """The ``algo.*`` values of the preset ``name`` (``""``: none); ValueError naming the valid presets."""
    if name == "":
        return {}
    if name not in CONVENTIONS:
        raise ValueError(f"config algo.conventions={name!r} is not one of '', {', '.join(map(repr, CONVENTIONS))}")
    return dict(CONVENTIONS[name])


def apply_conventions(config, explicit: Iterable[str] = ()):
    """Sets ``config.algo``'s fields to the preset named by ``config.algo.conventions``, in place, except the
    dotted keys in ``explicit`` (``"algo.std_eps"``: given on the command line). Returns ``config``. A config
    without ``algo.conventions`` is returned unchanged."""
    algo = config.get("algo") if hasattr(config, "get") else None
    if algo is None or "conventions" not in algo:
        return config
    keep = {key.removeprefix("--").strip() for key in explicit}
    for field, value in convention_fields(str(algo.conventions)).items():
        if field in algo and f"algo.{field}" not in keep:
            algo[field] = value
    return config
