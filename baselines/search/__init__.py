"""Architecture-search baselines (APS): each a Method of the one runner, registered on import."""

from baselines.search import aps  # noqa: F401  importing registers the method
