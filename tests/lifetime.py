"""The processes a test run starts do not outlive it: a run killed (a
timeout, kill -9) runs no cleanup."""

import shutil
import threading


def dies_with_its_starter(signal="TERM"):
    """The prefix that makes a command get ``signal`` when the test run that
    started it dies: a run killed (a timeout, kill -9) runs no cleanup, and
    its daemons would live on, serving and logging for nobody.

    The kernel sends it when the *thread* that started the command ends,
    so only a command started from the main thread gets it (one started
    from a pool thread would die with that thread).  A change of user
    clears it: a prefix that drops privileges goes before this one.
    """
    if threading.current_thread() is threading.main_thread() and shutil.which("setpriv"):
        return ["setpriv", "--pdeathsig", signal]
    return []


def running(pid):
    """Whether process ``pid`` exists and is not a zombie (which has ended,
    and waits only for its parent to collect its status)."""
    try:
        with open("/proc/%d/stat" % (pid,)) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
