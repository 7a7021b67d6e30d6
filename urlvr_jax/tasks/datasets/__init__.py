"""Local-file datasets (DAPO-17k, MATH-500, AIME24/25, AMC23, Countdown-Tasks-3to4) as TFDS array_record builders.

See ``specs`` for where to put each file and how its fields map onto ``Example``.
"""

from urlvr_jax.tasks.datasets.builders import BUILDERS, LocalFileBuilder, decode_record
from urlvr_jax.tasks.datasets.loader import (
    DATA_DIR_ENV,
    ExampleSource,
    data_root,
    dataset_names,
    load_dataset,
    load_source,
    prepare_builder,
)
from urlvr_jax.tasks.datasets.specs import SPECS, DatasetSpec

__all__ = [
    "BUILDERS", "DATA_DIR_ENV", "DatasetSpec", "ExampleSource", "LocalFileBuilder", "SPECS", "data_root",
    "dataset_names", "decode_record", "load_dataset", "load_source", "prepare_builder",
]
