"""ame: reproduce and extend AME (Aligned Manifold Entropy) for vision-language distillation.

`from ame import RSM, kd_loss` works, and `ame.load_student(run_folder)` gives a trained student; torch is imported on first use so that light pipeline steps
(dataset preparation, shot sampling, validation) start fast.
"""

__all__ = ["RSM", "KDLoss", "kd_loss", "load_student", "manifold_entropy"]
__version__ = "0.1.0"

_LAZY = {"RSM": "ame.rsm", "manifold_entropy": "ame.rsm", "KDLoss": "ame.kd", "kd_loss": "ame.kd",
         "load_student": "ame.models.student_file"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ame' has no attribute {name!r}")
