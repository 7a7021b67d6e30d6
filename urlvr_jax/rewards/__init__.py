"""Rewards for unsupervised RLVR, laid out like the paper's taxonomy.

* ``certainty``  intrinsic, certainty-based: self_certainty, token_entropy, trajectory_entropy,
  probability, probability_disparity (from the sampler's per-token statistics).
* ``ensemble``   intrinsic, ensemble-based: majority_vote, self_consistency, semantic_cluster,
  srt_threshold, srt_soft, co_rewarding_teacher (over the rollouts of one prompt).
* ``external``   ground_truth, countdown, self_verify; controls: random, format.
* ``answers``    extraction and normalisation; ``grading`` equivalence (math-verify in worker
  processes); ``clustering`` equivalence clusters; ``countdown`` the Countdown verifier;
  ``self_verify`` verification prompts and verdict parsing; ``metrics`` URLVR metrics.
* ``batch``      :class:`RewardBatch`; ``registry`` names -> reward functions.

Names are imported lazily, so importing this package costs nothing (grading workers import ``grading`` in a
fresh process). Reward functions are reached by name: ``get_reward("majority_vote")``.
"""

from urlvr_jax._exports import lazy_exports

_EXPORTS = {
    "compute_rewards": "registry", "get_reward": "registry", "list_rewards": "registry",
    "register_reward": "registry",
    "RewardBatch": "batch", "extract_answer": "answers", "normalize_answer": "answers",
    "majority_labels": "ensemble", "self_certainty_score": "certainty", "token_entropy_score": "certainty",
    "trajectory_entropy_score": "certainty", "probability_score": "certainty",
    "urlvr_metrics": "metrics", "pass_at_k": "metrics",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
