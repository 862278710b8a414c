"""What a wake source is: where simulated devices receive their wake-ups from.

:mod:`.fleet` runs devices against one; :mod:`.wakesources` has the
simulated SMSC and SIP endpoint that implement it.
"""

from zope.interface import Attribute, Interface

__all__ = ["IWakeSource", "WakeSource"]


class IWakeSource(Interface):
    """Where simulated devices receive their wake-ups from."""

    kind = Attribute("'sms' (WSP push PDUs) or 'sip' (package #0 bodies)")

    def listen(on_notification):
        """Start delivering: ``on_notification(destination, data)`` per wake-up.

        ``destination`` is the msisdn (SMS) or sip_uri (SIP) it is addressed
        to, ``data`` the raw bytes the device receives.
        """

    def stop():
        """Stop delivering."""


WakeSource = IWakeSource
