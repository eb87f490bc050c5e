"""Option validators shared by the frozen options classes: the core's own options use the same
rule and messages as the backends' (:mod:`streamsink.backend.options`)."""

from __future__ import annotations

from .backend.options import OptionValidator as Validator
from .backend.options import option_rule as rule

__all__ = ["Validator", "rule"]
