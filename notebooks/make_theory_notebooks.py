"""Write the theory notebooks (run: python notebooks/make_theory_notebooks.py)."""

from pathlib import Path

import nbformat as nbf

SETUP = """import os
import matplotlib
matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt
import jax, jax.numpy as jnp, numpy as np
QUICK = os.environ.get("URLVR_NOTEBOOK_QUICK") == "1"
"""

NOTEBOOKS = {
    "theory_01_theorem1_sharpening.ipynb": [
        "# Theorem 1 and sharpening\nExact KL-regularised majority-vote iteration on a tabular toy with surface forms, "
        "then sharpening under every intrinsic reward.",
        SETUP + "from urlvr_jax.theory import checks\nfrom urlvr_jax.theory import rewards as R",
        "for row in checks.check_theorem1():\n    print(row)",
        "names = R.INTRINSIC[:2] if QUICK else R.INTRINSIC\n"
        "res = {n: checks.sharpening_exact(n, num_prompts=50 if QUICK else 200, steps=10 if QUICK else 30) for n in names}\n"
        "plt.bar(range(len(res)), [v[0] for v in res.values()], tick_label=list(res))\n"
        "plt.xticks(rotation=45); plt.ylabel('share argmax kept & entropy down (KL)'); plt.show(); res",
    ],
    "theory_02_alignment_rise_fall.ipynb": [
        "# Alignment and rise-then-fall in the coupled toy",
        SETUP + "from urlvr_jax.theory import checks, coupled",
        "for row in checks.check_alignment(steps=20 if QUICK else 60):\n    print(row)",
        "cfg = coupled.COUPLED_DEFAULT._replace(steps=60 if QUICK else 400)\n"
        "out = coupled.run_coupled(2.0, seeds=1 if QUICK else 2, config=cfg, gt_steps=8 if QUICK else 64)\n"
        "for k in ('accuracy', 'mv_reward', 'reward_accuracy'):\n    plt.plot(out[k], label=k)\n"
        "plt.xlabel('step'); plt.legend(); plt.show()",
    ],
    "theory_03_collapse_step.ipynb": [
        "# Model Collapse Step as a trainability predictor (coupled toy)",
        SETUP + "from urlvr_jax.theory import coupled",
        "cfg = coupled.COUPLED_DEFAULT._replace(steps=60 if QUICK else 400)\n"
        "mus = (0.0, 2.5) if QUICK else (0.0, 1.0, 1.5, 2.0, 2.5)\n"
        "rows = coupled.collapse_step_experiment(mus, seeds=1 if QUICK else 2, config=cfg, gt_steps=8 if QUICK else 64)\n"
        "plt.scatter([r['collapse_step'] for r in rows], [r['gt_gain'] for r in rows])\n"
        "plt.xlabel('collapse step'); plt.ylabel('GT gain'); plt.show()\n"
        "print('Spearman rho', coupled.spearman([r['collapse_step'] for r in rows], [r['gt_gain'] for r in rows]))\nrows",
    ],
}


def main() -> None:
    here = Path(__file__).parent
    for name, cells in NOTEBOOKS.items():
        nb = nbf.v4.new_notebook()
        nb.cells = [nbf.v4.new_markdown_cell(cells[0])] + [nbf.v4.new_code_cell(c) for c in cells[1:]]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbf.write(nb, here / name)


if __name__ == "__main__":
    main()
