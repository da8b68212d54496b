"""The forward models under janssen's module name: ``from jscan.scopes import ...``.

They live in `jscan.core.scopes`; this module only re-exports them.
"""

from jscan.core.scopes import (
    diffractogram_noscale,
    linear_interaction,
    simple_diffractogram,
    simple_microscope,
)

__all__ = [
    "diffractogram_noscale",
    "linear_interaction",
    "simple_diffractogram",
    "simple_microscope",
]
