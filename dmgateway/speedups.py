"""
The optional C accelerators' loading, one rule for all of them.

Each is built by ``setup.py`` where a C compiler is at hand
(``optional=True``) and used when it is built, unless its switch in the
environment (``DMGW_PURE_WBXML``, ``DMGW_PURE_HTTP``...) is set to
anything but ``0``: then the pure module, the reference, does all the work.
"""

import importlib
import os


def optional_accelerator(module, name, switch):
    """
    C{module.name} of a built accelerator, or None: not built (or built
    without it), or the environment's C{switch} keeps it unused.
    """
    if os.environ.get(switch, "") not in ("", "0"):
        return None
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):  # not built: the pure module alone
        return None
