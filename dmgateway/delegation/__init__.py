"""DM-6: delegation of devices between DM servers (see docs/delegation.md).

:mod:`.messages` is the wire format (pure: bytes in, objects out, checked
against the packaged XML schema); :mod:`.flow` runs both sides of a
delegation on Twisted (the delegating server's device jobs, the target's
device accounts, the messages between them): the target's side is in
:mod:`.target`, the commands that grant a peer a device's subtrees in
:mod:`.grants`.
"""
