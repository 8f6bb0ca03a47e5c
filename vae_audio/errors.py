"""The package's exception for expected failures (bad input, bad checkpoint, bad config).

Every message names the file or value at fault and says what to do about it. The CLI
prints it as one line and exits with code 2; anything else is a bug and keeps its traceback.
"""


class VaeAudioError(Exception):
    """An expected failure whose message is meant for the user."""
