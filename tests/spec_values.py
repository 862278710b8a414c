"""The made-up values of the spec's example session (dm-protocol §10,
dm-security §5), shared by the server-engine and client tests."""

SERVER_URL = "https://dms.example.com/dm"
RESP_URI = "https://dms.example.com/dm?s=1A2&dev=490154203237518"
DEVICE_ID = "IMEI:490154203237518"
SERVER_ID = "com.example.dms"
CLIENT_NAME, CLIENT_SECRET = "dmclient01", "s3cr3t!"
SERVER_NAME, SERVER_SECRET = "com.example.dms", "srvPass123"
CLIENT_NONCE = bytes(range(1, 17))  # AQIDBAUGBwgJCgsMDQ4PEA==
SERVER_NONCE = bytes.fromhex("a1b2c3d4e5f60718")  # obLD1OX2Bxg=
NEXT_CLIENT_NONCE = bytes.fromhex("0f1e2d3c4b5a6978")  # Dx4tPEtaaXg=
NEXT_SERVER_NONCE = bytes.fromhex("1122334455667788")  # ESIzRFVmd4g=
