"""
What a device told us beyond DevInfo: the other nodes it reported in its
package 1 Replace (``reported``, by URI) and the last challenge it sent us
that the account holds no server credentials for (``device_challenge``).
"""

STATEMENTS = [
    "ALTER TABLE devices ADD COLUMN reported {json}",
    "ALTER TABLE devices ADD COLUMN device_challenge {json}",
]
