"""
The session engine and the dispatcher tell effects and client commands
apart by their exact class (C{kind is fx.JobStarted}), not with
C{isinstance}: a subclass anywhere in the package would silently fall
to the last branch (ignored, or refused with 405).  These tests keep
those classes without subclasses.
"""

import importlib
import pkgutil

from twisted.trial import unittest

import dmgateway
from dmgateway.codec import syncml as sm
from dmgateway.dm import effects as fx

# the commands ClientCommands._take tells apart by class
TAKEN_COMMANDS = (sm.Status, sm.Results, sm.Alert, sm.Replace, sm.UnknownCommand)


def _import_all():
    for module in pkgutil.walk_packages(dmgateway.__path__, "dmgateway."):
        if module.name.endswith("__main__"):
            continue  # a program, run on import
        try:
            importlib.import_module(module.name)
        except ImportError:
            pass  # an optional dependency (a plugin's) not installed: it defines none of these


class FinalClassesTests(unittest.TestCase):
    def test_effects_have_no_subclasses(self):
        _import_all()
        effects = fx.Effect.__subclasses__()
        self.assertIn(fx.JobStarted, effects)
        for effect in effects:
            self.assertEqual(effect.__subclasses__(), [], effect.__name__)

    def test_taken_commands_have_no_subclasses(self):
        _import_all()
        for command in TAKEN_COMMANDS:
            self.assertEqual(command.__subclasses__(), [], command.__name__)
