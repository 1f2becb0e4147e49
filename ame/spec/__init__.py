"""The run specification: presets (strict), the method registry, typed run records, path layout."""

from ame.spec.layout import Layout
from ame.spec.methods import METHODS, Method, method
from ame.spec.preset import ConfigError, load_active, load_preset, validate_preset
from ame.spec.run import RunSpec, ablation_specs, grid_specs, run_spec, zeroshot_specs

__all__ = ["ConfigError", "Layout", "METHODS", "Method", "RunSpec", "ablation_specs", "grid_specs", "load_active",
           "load_preset", "method", "run_spec", "validate_preset", "zeroshot_specs"]
