"""
Device functions: FUMO (firmware), SCOMO (software components) and LAWMO
(lock and wipe) as a typed layer over jobs.

Pure: no Twisted, no clock, no I/O.  :mod:`.mo` holds the facts of the
three management objects (nodes, Exec targets, alert types, result codes,
state values), :mod:`.operations` turns a requested operation into job
commands, and :mod:`.alerts` reads the device's Generic Alert back into a
typed completion.
"""

from .alerts import Completion, parse_completion
from .mo import FUNCTIONS, Outcome, outcome_for
from .operations import (FunctionError, Operation, build_operation, correlator_for, offered_wipe_list,
                         parse_inventory, wipe_commands)

__all__ = [
    "FUNCTIONS",
    "Completion",
    "FunctionError",
    "Operation",
    "Outcome",
    "build_operation",
    "correlator_for",
    "offered_wipe_list",
    "outcome_for",
    "parse_completion",
    "parse_inventory",
    "wipe_commands",
]
