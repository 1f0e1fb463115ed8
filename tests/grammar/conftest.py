"""Hypothesis settings for the grammar's property tests.

Times are not asserted in this test suite: the machines that run it are shared, and a parse
preempted for a second is not a bug. So Hypothesis's per-example deadline is off.
"""

from hypothesis import settings

settings.register_profile("grammar", deadline=None)
settings.load_profile("grammar")
