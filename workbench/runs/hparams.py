"""Hyperparameters and final metrics of a run for TensorBoard's HParams plugin.

    log_hparams(run_dir, {"learning_rate": 2e-5, "batch_size": 32, "seed": 1},
                {"dev": {"accuracy": 0.84, "f1": 0.88}})

Each run writes one HParams session into `<run_dir>/tensorboard/` (beside the
`train/` loss curves the Keras callback writes there), so
`tensorboard --logdir results/runs` lists every run in the HParams dashboard's
table, parallel-coordinates and scatter views, with the training loss one
click away. Metrics become scalars `<split>/<metric>` at step 0.
"""

import glob
import json
import math
import os
import shutil
import tempfile

from workbench.runs.tables import FINETUNE_COLUMNS

SUFFIX = ".hparams"  # event files written here end with this, so a re-log replaces them
# The result-table columns that are a fine-tuning run's hyperparameters (the
# resolved values, paper defaults filled in): what `finetune()` logs. They are
# the table's settings, from "task" to "precision", less what is not chosen: the
# row's own split, metric and value, and the replica count the strategy found.
_SETTINGS = FINETUNE_COLUMNS[FINETUNE_COLUMNS.index("task") : FINETUNE_COLUMNS.index("precision") + 1]
HPARAM_COLUMNS = tuple(c for c in _SETTINGS if c not in ("split", "metric", "value", "replicas"))


def hparam_value(value):
    """A value the HParams plugin accepts (bool, int, float or str)."""
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None:
        return "None"
    return json.dumps(value, sort_keys=True, default=str)


def flat_metrics(metrics):
    """{split: {metric: value}} (what `finetune` returns) or {name: value} -> {"split/metric": float}."""
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            for name, v in value.items():
                flat[f"{key}/{name}"] = float(v)
        else:
            flat[str(key)] = float(value)
    return flat


def log_hparams(run_dir, params, metrics):
    """Write the run's hyperparameters and final metrics as one HParams session.

    Args:
        run_dir: the run's output directory; the events go to `<run_dir>/tensorboard/`.
        params: {name: value}; None, lists and dicts are logged as text.
        metrics: {split: {metric: value}} or {name: value}.
    Returns:
        the event file written. Logging again replaces the previous one (the
        plugin expects one session summary per directory).
    """
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    logdir = os.path.join(run_dir, "tensorboard")
    os.makedirs(logdir, exist_ok=True)
    hparams = {str(k): hparam_value(v) for k, v in params.items()}
    scalars = flat_metrics(metrics)
    staging = tempfile.mkdtemp(prefix=".tmp-hparams-", dir=logdir)
    try:
        writer = tf.summary.create_file_writer(staging, filename_suffix=SUFFIX)
        with writer.as_default():
            hp.hparams(hparams, trial_id=os.path.basename(os.path.normpath(run_dir)))
            for name, value in scalars.items():
                tf.summary.scalar(name, value, step=0)
        writer.close()
        (written,) = glob.glob(os.path.join(staging, "events.out.tfevents.*" + SUFFIX))
        old = glob.glob(os.path.join(logdir, "events.out.tfevents.*" + SUFFIX))
        target = os.path.join(logdir, os.path.basename(written))
        os.replace(written, target)
        for path in old:
            if path != target:
                os.remove(path)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_hparams(run_dir):
    """(hparams, metrics) logged for a run, read back from its event file."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata
    from tensorboard.util import tensor_util

    (path,) = glob.glob(os.path.join(run_dir, "tensorboard", "events.out.tfevents.*" + SUFFIX))
    hparams, metrics = {}, {}
    for event in EventFileLoader(path).Load():
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME:
                info = metadata.parse_session_start_info_plugin_data(value.metadata.plugin_data.content)
                for name, v in info.hparams.items():
                    hparams[name] = getattr(v, v.WhichOneof("kind"))
            elif value.HasField("tensor"):
                metrics[value.tag] = float(tensor_util.make_ndarray(value.tensor))
    return hparams, metrics
