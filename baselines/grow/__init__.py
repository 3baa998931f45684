"""Growing baselines (RandGrow, SplitGrow, MoGrow): each a Method of the one runner, registered on import."""
