"""The devices and device accounts the tests share, each written once.

Tests that need a variant extend one of these (``dict(E2E_ACCOUNT, msisdn=...)``)
rather than copy it.
"""

#: the IMEI of the OMA specification examples
DEVICE = "IMEI:490154203237518"
#: the device of the REST API tests and the end-to-end walk-through
API_DEVICE = "IMEI:350000000000001"
#: the device of the end-to-end security, metrics and TLS-PSK tests
E2E_DEVICE = "IMEI:350000000000077"

#: the account of the in-process dispatcher tests (server_id is tests.support.gateway_config's)
ACCOUNT = {
    "server_id": "dmgw-test",
    "client_auth": {"type": "md5", "name": "dev", "secret": "dev-secret"},
    "server_auth": {"type": "md5", "name": "dmgw-test", "secret": "srv-secret"},
}

#: the account the end-to-end tests put on a real daemon (tests.interop.daemon's server_id)
E2E_ACCOUNT = {
    "server_id": "dmgw-e2e",
    "client_auth": {"type": "md5", "name": "dev1", "secret": "dev-secret-1"},
    "server_auth": {"type": "md5", "name": "dmgw-e2e", "secret": "srv-secret-1"},
}

#: the account of the REST API and dmgw tests
API_ACCOUNT = {
    "server_id": "dms.example.com",
    "client_auth": {"type": "md5", "name": "dmclient01", "secret": "cl1ent-s3cret"},
    "server_auth": {"type": "md5", "name": "dms.example.com", "secret": "s3rver-s3cret"},
}
