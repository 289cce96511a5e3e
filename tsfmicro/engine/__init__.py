"""Training and evaluation: LOSO with the paper's recipe, two scoring protocols, run directories.

Public API:
    RunConfig(dataset, root, task, fusion="ts_late", preset="paper", recipe="paper", seeds=(0,),
              device="auto", out="runs", crop_size=None, cache_dir=None, checkpoint_every=5,
              checkpoint_seconds=60.0, test_root=None, **run options)
                                             one field per row of tsfmicro.options.OPTIONS: epochs,
                                             batch_size, precision, rotary, temporal_branch, loss,
                                             sampling, frame_reselection, errata, apex, split,
                                             test_dataset, arch
    train(config, progress=True) -> Run      reuses a finished run with the same identity
    load_run(path) -> Run                    (tsfmicro.results) .predictions .metrics .curves .provenance
                                             .config .path .class_names .fold_model(subject)
    plan.make_plan(configs) -> Plan          the units, folds, cost and state of a set of requests
    evaluate.shift_predictions(run, data)    a run's fold models on moved onset/apex frames (kept in the run)
    execute.execute(plan, executor)          train every unfinished fold (LocalExecutor, RayExecutor)
    RECIPES, get_recipe(name, dataset, task, fusion="ts_late", epochs=None, batch_size=None,
                        precision=None, loss=None, sampling=None) -> Recipe
    PROTOCOLS = ("fixed", "oracle")
"""
from tsfmicro.metrics import PROTOCOLS

from tsfmicro.results import Run, load_run

from .execute import train
from .recipes import RECIPES, Recipe, get_recipe
from .runs import RunConfig, resolve_device

__all__ = ["PROTOCOLS", "RECIPES", "Recipe", "Run", "RunConfig", "get_recipe", "load_run", "resolve_device", "train"]
