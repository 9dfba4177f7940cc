"""The one error type a user can cause and fix.

Library code raises `UserError` for bad input (an impossible spec, an unknown arch, an unwritable path).
The CLI turns it into one line on stderr, `error: <message>`, and exit code 2, never a traceback.
The message says what to change.
"""


class UserError(ValueError):
    """Bad input a user can fix; the message names the fix."""
