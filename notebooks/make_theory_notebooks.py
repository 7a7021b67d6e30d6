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
        "then which distribution each intrinsic reward sharpens: full sequences y = (z, a) or the answer marginal.",
        SETUP + "from urlvr_jax.theory import checks\nfrom urlvr_jax.theory.sharpening import sharpening_table",
        "for row in checks.check_theorem1():\n    print(row)",
        "tab = sharpening_table(num_prompts=50 if QUICK else 200, steps=10 if QUICK else 30)\n"
        "x = np.arange(len(tab))\n"
        "for i, level in enumerate(('trajectory', 'answer')):\n"
        "    plt.bar(x + 0.4 * i, [t[('kl', level)][2] for t in tab.values()], 0.4, label=level)\n"
        "plt.xticks(x + 0.2, list(tab), rotation=45); plt.ylabel('argmax kept & entropy down (KL)')\n"
        "plt.legend(); plt.show(); tab",
    ],
    "theory_02_alignment_rise_fall.ipynb": [
        "# Alignment and rise-then-fall in the coupled toy",
        SETUP + "from urlvr_jax.theory import checks, coupled",
        "for row in checks.check_alignment(steps=20 if QUICK else 60):\n    print(row)",
        "cfg = coupled.COUPLED_DEFAULT._replace(steps=60 if QUICK else 400)\n"
        "out = coupled.run_coupled(checks.RISE_FALL_MU, seeds=4, config=cfg, gt_steps=0)\n"
        "for k in ('accuracy', 'mv_reward', 'reward_accuracy'):\n    plt.plot(out[k], label=k)\n"
        "plt.xlabel('step'); plt.legend(); plt.show()",
    ],
    "theory_03_collapse_step.ipynb": [
        "# Model Collapse Step as a trainability predictor (coupled toy)",
        SETUP + "from urlvr_jax.theory import coupled",
        "cfg = coupled.COUPLED_DEFAULT._replace(steps=60 if QUICK else 400)\n"
        "mus = (0.0, 2.5) if QUICK else (0.0, 1.0, 1.5, 1.75, 2.0, 2.5)\n"
        "rows = coupled.collapse_step_experiment(mus, seeds=1 if QUICK else 4, config=cfg, gt_steps=16 if QUICK else 64)\n"
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
