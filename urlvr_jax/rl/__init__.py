"""GRPO for URLVR: advantage estimators, policy losses, the jitted train step and the training loop.

Names are imported lazily (see docs/api.md for each one's contract); ``urlvr_jax.rl.conventions`` and
``urlvr_jax.rl.registry`` import nothing heavy.
"""

from urlvr_jax._exports import lazy_exports

_EXPORTS = {
    "compute_advantages": "advantages", "get_advantage_fn": "advantages", "register_advantage_fn": "advantages",
    "group_stats": "advantages", "contiguous_group_ids": "advantages",
    "GRPOLossConfig": "losses", "grpo_loss_terms": "losses", "policy_loss": "losses", "aggregate": "losses",
    "accumulate_terms": "losses", "finalize": "losses", "register_policy_loss_fn": "losses",
    "register_aggregation": "losses", "kl_penalty": "kl",
    "TrainState": "train_step", "TrainBatch": "train_step", "StepConfig": "train_step",
    "make_optimizer": "train_step", "init_train_state": "train_step", "jit_train_step": "train_step",
    "URLVRRun": "loop", "RunResult": "loop", "train": "loop",
    "CONVENTIONS": "conventions", "apply_conventions": "conventions",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
