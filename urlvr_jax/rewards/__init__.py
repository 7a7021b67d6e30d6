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

This package imports nothing heavy on purpose: grading workers import ``grading`` in a fresh process.
Import the submodules you need, e.g. ``from urlvr_jax.rewards.batch import RewardBatch``.
"""

from urlvr_jax.rewards.registry import compute_rewards, get_reward, list_rewards, register_reward

__all__ = ["compute_rewards", "get_reward", "list_rewards", "register_reward"]
