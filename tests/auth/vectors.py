"""Test vectors of OMA DM authentication (copied from the project's spec notes).

The OMA DM Security specification's own examples (Bruce2/OhBehave) plus
made-up ones computed independently with hashlib/base64.
"""

# OMA DM spec examples
SPEC_USER = "Bruce2"
SPEC_PASS = "OhBehave"
SPEC_NONCE = b"Nonce"
SPEC_BASIC = "QnJ1Y2UyOk9oQmVoYXZl"
SPEC_MD5 = "Zz6EivR3yeaaENcRN6lpAQ=="

# Client (CLCRED)
CLIENT_USER = "dmclient01"
CLIENT_PASS = "s3cr3t!"
CLIENT_BASIC = "ZG1jbGllbnQwMTpzM2NyM3Qh"
CLIENT_HASH_HEX = "8622faf17001177715c29db7f60765ea"
CLIENT_HASH = "hiL68XABF3cVwp239gdl6g=="
CLIENT_NONCE = bytes(range(1, 17))
CLIENT_NONCE_B64 = "AQIDBAUGBwgJCgsMDQ4PEA=="
CLIENT_MD5 = "Q3r6Z+uEU9+S9G0eEFL04w=="
# the common bug: nonce taken as its base64 text instead of the raw bytes
CLIENT_MD5_WRONG_B64_NONCE = "fLkqvt21VZ6U36frhBBfBw=="

# Server (SRVCRED)
SERVER_USER = "com.example.dms"
SERVER_PASS = "srvPass123"
SERVER_NONCE = bytes.fromhex("a1b2c3d4e5f60718")
SERVER_NONCE_B64 = "obLD1OX2Bxg="
SERVER_MD5 = "FW66ju32iLhlrhkMJpX8JQ=="

# Next nonces of the example session (dm-protocol §10)
NEXT_CLIENT_NONCE_B64 = "Dx4tPEtaaXg="
NEXT_CLIENT_NONCE = bytes.fromhex("0f1e2d3c4b5a6978")
NEXT_SERVER_NONCE_B64 = "ESIzRFVmd4g="
NEXT_SERVER_NONCE = bytes.fromhex("1122334455667788")

# HMAC: the exact 320-byte body, no trailing newline
HMAC_BODY = (
    b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD>'
    b"<VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>1</MsgID>"
    b"<Target><LocURI>https://dms.example.com/dm</LocURI></Target>"
    b"<Source><LocURI>IMEI:490154203237518</LocURI><LocName>dmclient01</LocName>"
    b"</Source></SyncHdr><SyncBody><Final/></SyncBody></SyncML>"
)
HMAC_BODY_MD5_HEX = "d3aa2be49f3f90d8b552cdff60767701"
HMAC_BODY_MD5_B64 = "06or5J8/kNi1Us3/YHZ3AQ=="
HMAC_MAC = "mss1ap8FuNwyckf6H22MUw=="
HMAC_HEADER = 'algorithm=MD5, username="dmclient01", mac=mss1ap8FuNwyckf6H22MUw=='

# The OMA text's example mac: base64 of a 32-character hex text, unpadded
OMA_HEX_MAC = "NTI2OTJhMDAwNjYxODkwYmQ3NWUxN2RhN2ZmYmJlMzk"
OMA_HEX_MAC_TEXT = b"52692a000661890bd75e17da7ffbbe39"
