"""The one exception type datamodules raise for problems a user can fix, and how a name from data is printed."""


class DataError(Exception):
    """Bad or missing data, or an impossible data setting; the message says what to do."""


def printable(value: object, limit: int | None = None) -> str:
    """``value`` as text safe for a terminal, on one line (at most ``limit`` characters): every control character
    (escape, bell, bidi override, ...) shown as ``?``, line breaks and tabs as spaces. Names from data (files,
    classes, fields of a stream) and library messages pass through this before they are printed."""
    text = str(value)[:limit]
    return "".join(c if c.isprintable() else " " if c in "\n\r\t" else "?" for c in text)
