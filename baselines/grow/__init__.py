"""Growing baselines (RandGrow, SplitGrow, MoGrow): each a Method of the one runner, registered on import."""

from baselines.grow import mogrow, randgrow, splitgrow  # noqa: F401  registers the methods
