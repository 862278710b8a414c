"""User-interaction alerts 1100-1104 (dm-protocol §5.1) on the client side.

A *UI policy* is any callable ``policy(code, options, text, choices) ->
(status, answers)``: ``options`` is the parsed option dict (``MAXDT``,
``DR`` ...), ``text`` the prompt, ``choices`` the choice texts of 1103/1104.
It returns the alert's status (200, 304 for "no", 214 cancelled, 408
timeout ...) and the list of answer strings that go into the Status Items
(the text for 1102, the chosen numbers from 1 for 1103/1104).
"""

from urllib.parse import parse_qsl

__all__ = [
    "DISPLAY",
    "CONFIRM",
    "TEXT_INPUT",
    "SINGLE_CHOICE",
    "MULTIPLE_CHOICE",
    "UI_ALERTS",
    "parse_options",
    "default_policy",
    "scripted_policy",
]

DISPLAY, CONFIRM, TEXT_INPUT, SINGLE_CHOICE, MULTIPLE_CHOICE = 1100, 1101, 1102, 1103, 1104
UI_ALERTS = (DISPLAY, CONFIRM, TEXT_INPUT, SINGLE_CHOICE, MULTIPLE_CHOICE)

OK, NOT_MODIFIED, CANCELLED = 200, 304, 214


def parse_options(text):
    """The option string ``MAXDT=30&DR=1`` as a dict with upper-case keys.

    Values are URL-decoded (``+`` is a space); malformed pairs are skipped.
    """
    if not isinstance(text, str) or not text:
        return {}
    options = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        if name:
            options[name.strip().upper()] = value
    return options


def default_policy(code, options, text, choices):
    """Answer every alert with its default response (``DR``), as if the user did.

    Confirmation without ``DR=0`` is accepted; a single choice without a
    default picks the first item; a multiple choice without one picks none.
    """
    default = options.get("DR")
    if code == CONFIRM:
        return (NOT_MODIFIED if default == "0" else OK), []
    if code == TEXT_INPUT:
        return OK, [default or ""]
    if code == SINGLE_CHOICE:
        return OK, [default or "1"]
    if code == MULTIPLE_CHOICE:
        return OK, [number for number in (default or "").split("-") if number]
    return OK, []


def scripted_policy(answers):
    """A policy answering alerts in order from ``answers``: ``(status, [answers])`` pairs.

    Every call is recorded in the returned policy's ``calls`` list as
    ``(code, options, text, choices)``.
    """
    queue = list(answers)

    def policy(code, options, text, choices):
        policy.calls.append((code, options, text, list(choices)))
        if not queue:
            return default_policy(code, options, text, choices)
        return queue.pop(0)

    policy.calls = []
    return policy
