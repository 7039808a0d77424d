"""The one exception type modules raise for problems a user can fix."""


class ModelError(Exception):
    """An impossible model setting or unusable weights; the message says what to do."""
