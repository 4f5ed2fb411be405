"""The evaluation pipeline: samples from anywhere -> features (cached) -> metrics; and run scoring.

::

    ganforge.evaluate("cifar10:test", "runs/dcgan-cifar10", metrics=["fid", "kid"])
    ganforge.evaluate_run("runs/dcgan-digits")    # the run's data set and its eval config

Modules:

* :mod:`~ganforge.evaluation.sources`: anything evaluable (run, array file, image folder,
  data set name, tensor, generator) resolved to samples;
* :mod:`~ganforge.evaluation.features`: the on-disk cache of reference features;
* :mod:`~ganforge.evaluation.registry`: metrics by name (:data:`METRICS`) and what they read;
* :mod:`~ganforge.evaluation.adapters`: the built-in metrics (``fid``, ``kid``, ``is``, ``pr``,
  ``dc``, ``modes``, ``cas``) over the pure functions of :mod:`ganforge.metrics`;
* :mod:`~ganforge.evaluation.api`: :class:`Evaluator`, :func:`evaluate`, :func:`evaluate_run`
  and the run evaluators' registry (:data:`RUN_EVALUATORS`, one :class:`EvalRequest` each);
* :mod:`~ganforge.evaluation.translation`, :mod:`~ganforge.evaluation.superres`: the run
  evaluators of image-to-image (``pix2pix``, ``cyclegan``) and super-resolution (``srgan``) runs.

Importing the package registers the built-in metrics and run evaluators.
"""

from . import adapters  # noqa: F401  (registers fid, kid, is, pr, dc, modes, cas)
from . import tabular as _tabular  # noqa: F401  (registers tstr, column-shapes, correlation, detection, dcr and epsilon)
from . import text as _text  # noqa: F401  (registers bleu, self-bleu, copy and nll)
from . import video as _video  # noqa: F401  (registers fvd, frame-fid, identity and motion)
from .api import (
    RUN_EVALUATORS,
    EvalRequest,
    Evaluator,
    ExtractorChoice,
    RunEvaluator,
    choose_extractor,
    evaluate,
    evaluate_generator_run,
    evaluate_run,
    format_results,
    register_run_evaluator,
    run_config,
    save_statistics,
    uses_features,
)
from .features import cached_features
from .registry import METRICS, EvalInputs, Metric, check_real_given, metric_names, register_metric, resolve_metrics
from .sources import (
    SOURCE_KINDS,
    Source,
    SourceKind,
    SourceOptions,
    array_samples,
    dataset_source,
    generate,
    generated_source,
    load_source,
)
from .superres import SREvalOptions, evaluate_sr, score_folder  # registers the srgan run evaluator
from .translation import evaluate_translation, mean_l1  # registers the pix2pix and cyclegan run evaluators

__all__ = [
    "METRICS",
    "RUN_EVALUATORS",
    "SOURCE_KINDS",
    "EvalInputs",
    "EvalRequest",
    "Evaluator",
    "ExtractorChoice",
    "Metric",
    "RunEvaluator",
    "SREvalOptions",
    "Source",
    "SourceKind",
    "SourceOptions",
    "array_samples",
    "cached_features",
    "check_real_given",
    "choose_extractor",
    "dataset_source",
    "evaluate",
    "evaluate_generator_run",
    "evaluate_run",
    "evaluate_sr",
    "evaluate_translation",
    "format_results",
    "generate",
    "generated_source",
    "load_source",
    "mean_l1",
    "metric_names",
    "register_metric",
    "save_statistics",
    "register_run_evaluator",
    "resolve_metrics",
    "run_config",
    "score_folder",
    "uses_features",
]
