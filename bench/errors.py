"""The one exception type the command line turns into a single clear line."""


class DisbenchError(Exception):
    """A user-facing error: the message names the file or argument and the fix.

    The CLI prints ``error: <message>`` and exits non-zero (no traceback unless
    ``--debug``).
    """
