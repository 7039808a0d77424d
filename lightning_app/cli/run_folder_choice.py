"""Which folder a run writes to, chosen from its config before anything is built.

A resumed ``fit`` goes on in the folder its checkpoint was written in (a second config is written beside the
first); any other run claims a new ``version_N`` (``runs/run_folders.py``), also without a logger, and also when
its config names a version that already holds a run (a run's own ``config.yaml`` given to ``-c`` again).
``--trainer.default_root_dir`` alone moves the logger's ``save_dir`` with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from jsonargparse import Namespace
from lightning.pytorch.utilities import rank_zero_only
from upath import UPath

from lightning_app.runs import checkpoints, run_folders
from lightning_app.runs.run_folders import RUNS
from lightning_app.runs.saved_run import SavedRun, loaded_class
from lightning_app.runs.storage import location

AUTO = "auto"  # the logger's name until the run's classes are known: <Model>-<Data>


@dataclass
class RunFolder:
    claimed: UPath | None = None  # the folder this process created (removed if the run fails before a checkpoint)
    resumed: UPath | None = None  # the folder a `fit --ckpt_path` came from

    def config_filename(self) -> str:
        """``config.yaml``; a resumed run keeps it and writes ``config.resume-K.yaml`` beside it."""
        run = self.resumed
        if run is None or not (run / "config.yaml").exists():
            return "config.yaml"
        k = 1
        while (run / f"config.resume-{k}.yaml").exists():
            k += 1
        return f"config.resume-{k}.yaml"


def logger_args(section: Namespace) -> Namespace | None:
    """The settings of the run's logger that writes to ``save_dir/name/version`` (TensorBoardLogger, CSVLogger,
    any logger with those settings; the first such of a list), or None without one."""
    loggers = section.trainer.get("logger")
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        if isinstance(logger, Namespace) and isinstance(logger.get("init_args"), Namespace):
            args = logger.init_args
            if "save_dir" in args and "name" in args:
                return args
    return None


def other_loggers(section: Namespace, first: Namespace) -> list[Namespace]:
    """The other loggers of a list that write beside the first, which then share its name and version."""
    loggers = section.trainer.get("logger")
    if not isinstance(loggers, list):
        return []
    return [
        logger.init_args
        for logger in loggers
        if isinstance(logger, Namespace)
        and isinstance(logger.get("init_args"), Namespace)
        and logger.init_args is not first
        and logger.init_args.get("save_dir") == first.get("save_dir")
        and "name" in logger.init_args
    ]


def holds_a_run(logger: Namespace) -> bool:
    """Whether the logger's named version folder already holds a run (its config, or checkpoints)."""
    folder = location(logger.save_dir) / str(logger.name) / str(logger.version)
    return (folder / "config.yaml").exists() or (folder / "checkpoints").exists()


def choose_run_folder(section: Namespace, subcommand: str, resumed_from: tuple[str, SavedRun] | None) -> RunFolder:
    """Set the logger's name and version (or ``default_root_dir`` without a logger) in ``section``."""
    chosen = RunFolder()
    data_class = loaded_class(str(section.data.class_path), object)
    by_folder = getattr(data_class, "runs_named_by_folder", False)  # photo folders: runs carry the folder's name
    folder = (section.data.get("init_args") or {}).get("data_dir") if by_folder else None
    name = checkpoints.run_name(section.model.class_path, section.data.class_path, folder)
    logger = logger_args(section)
    if logger is not None and logger.name in (AUTO, None):
        logger.name = name
    if subcommand == "fit" and resumed_from is not None:
        path, run = resumed_from
        folder = chosen.resumed = checkpoints.run_folder_of(path, run.state)
        if folder is not None and logger is not None and logger.get("version") is None:
            logger.save_dir, logger.name, logger.version = str(folder.parent.parent), folder.parent.name, folder.name
            return chosen
    if logger is not None and logger.save_dir == RUNS and section.trainer.get("default_root_dir") not in (None, RUNS):
        logger.save_dir = section.trainer.default_root_dir  # --trainer.default_root_dir alone moves the whole run
    if logger is not None and logger.get("version") is not None and holds_a_run(logger):
        logger.version = None  # a run's own config.yaml run again: a new run, and the old folder as it was
    if rank_zero_only.rank != 0:
        return chosen  # rank 0 alone claims; Lightning broadcasts its log_dir to the other ranks
    if logger is not None and logger.get("version") is None:
        chosen.claimed = run_folders.claim_version(location(logger.save_dir) / logger.name)
        logger.version = chosen.claimed.name
        for other in other_loggers(section, logger):
            if other.get("version") is None and other.name in (AUTO, None, logger.name):
                other.name, other.version = logger.name, logger.version
    elif logger is None and subcommand == "fit" and not section.trainer.get("logger"):
        # without a logger, checkpoints go to default_root_dir/checkpoints: give this run its own
        chosen.claimed = run_folders.claim_version(location(section.trainer.default_root_dir or ".") / name)
        section.trainer.default_root_dir = str(chosen.claimed)
    return chosen
