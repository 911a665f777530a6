"""The one exception type for user mistakes and bad input.

The CLI turns it into a one-line message on stderr and exit code 2; the app shows it as a
gr.Error. Anything else escaping is a bug in hwml, not the user's fault.
"""


class HwmlError(Exception):
    """Bad input or a user mistake, with a message that names the file and the problem."""
