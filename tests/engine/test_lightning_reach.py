"""engine/lightning_reach.py: the one non-public part of Lightning the app uses, checked on the version installed."""

import lightning

from lightning_app.engine.lightning_reach import CHECKED


def test_the_installed_lightning_is_one_the_step_count_was_checked_on():
    minor = ".".join(lightning.__version__.split(".")[:2])
    assert minor in CHECKED, (
        f"Lightning {lightning.__version__}: the fast path adds its optimizer steps to the loop's step progress "
        f"(engine/lightning_reach.py), read and tested on Lightning {', '.join(CHECKED)}. Check that "
        "trainer.global_step still reads fit_loop.epoch_loop.manual_optimization.optim_step_progress under manual "
        "optimization (tests/engine/test_fast_path.py compares the step counts), then add this version to CHECKED"
    )
