"""One run of a study (``urlvr_jax.studies.runner``), selected by a comma-separated argument:

    python -m urlvr_jax.train --config study:study=sweep,method=majority_vote,knob=temperature,value=0.6,scale=toy
    python -m urlvr_jax.train --config study:study=dataset_size,size=512,seed=1,scale=paper model.path=/data/Qwen3-1.7B-Base

Keys: ``study`` (sweep | dataset_size | ttt | countdown), ``scale`` (toy | paper, default toy), ``root``
(default runs/studies), ``prior`` (auto | skip: at toy scale, warm-start the cached prior if missing), and the
study's labels (``python -m urlvr_jax.studies list STUDY`` prints every run's argument).
"""

from urlvr_jax.studies.runner import config_from_arg


def get_config(arg: str = ""):
    return config_from_arg(arg)
