"""The one exception type datamodules raise for problems a user can fix."""


class DataError(Exception):
    """Bad or missing data, or an impossible data setting; the message says what to do."""
