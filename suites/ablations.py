"""Thesis ablations on CIFAR-10 (Tables 3-2 ... 3-16): one knob each, the others at their defaults.

Filled in with the AdaGrow options as they are implemented; each entry names the knob value so the
report can put the thesis' number beside ours.
"""

from __future__ import annotations

from suites import SUITES, Entry  # noqa: F401
