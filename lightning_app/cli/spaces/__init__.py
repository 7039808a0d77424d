"""The search spaces ``sweep`` uses when no ``--sweep.space`` is given: one per model class."""
