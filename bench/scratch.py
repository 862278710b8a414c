"""A bench's scratch directory (its daemon's config, store and log), removed when the bench exits."""

import atexit
import shutil
import tempfile


def scratch_dir(prefix: str) -> str:
    """
    A new temporary directory, removed with everything in it when the
    process exits, however the bench ended (short of being killed): a
    bench's store and log take tens of MB, and each run used to leave
    them behind in /tmp.
    """
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, True)
    return path
