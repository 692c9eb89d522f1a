"""The one exception type the command line turns into a single line for the user."""


class HdlgenError(Exception):
    """A user-facing error: bad model, bad option, missing tool.

    The message names the file or layer at fault and what to change. The command line prints it
    as one line and exits with status 2; anything else escaping is a bug in hdlgen.
    """
