"""A tiny Twisted TLS-PSK peer for the openssl interop tests (run as a subprocess).

``python -m tests.interop.pskpeer serve IDENTITY KEYHEX``
    listens on a free loopback port with :mod:`dmgateway.bearers.tlspsk`
    (one identity/key), prints ``PORT n`` and answers every HTTP request with
    ``identity=<the PSK identity the peer used>``; logs go to stderr.
``python -m tests.interop.pskpeer fetch URL IDENTITY KEYHEX``
    GETs ``URL`` with the TLS context the delegation client uses towards a
    PSK peer (:func:`dmgateway.bearers.delegation.client_context`) and prints ``STATUS n``
    and the body, or ``ERROR ...`` (exit 1).
Both stop by themselves after 30 seconds.
"""

import os
import sys

from twisted.internet import endpoints, reactor
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.web import resource, server
from twisted.web.client import Agent, readBody

from dmgateway.bearers import tlspsk


class Answer(resource.Resource):
    isLeaf = True

    def render(self, request):
        identity = getattr(request.channel.transport, "psk_identity", None) or "-"
        request.setHeader(b"Content-Type", b"text/plain")
        return b"identity=" + identity.encode("utf-8") + b"\n"


def serve(identity, key_hex):
    key = tlspsk.parse_psk(key_hex)
    context = tlspsk.psk_context()
    tlspsk.add_psk_server(context, {identity: key}.get, hint="pskpeer")
    site = server.Site(Answer())
    site.log = lambda request: None
    factory = tlspsk.PeerLoggingTLSFactory(tlspsk.ConnectionCreator(context), site, name="pskpeer")
    d = endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)

    def listening(port):
        print("PORT %d" % (port.getHost().port,), flush=True)

    d.addCallback(listening)


def fetch(url, identity, key_hex):
    # the context the delegation client builds for a peer (bearers/delegation.py)
    import tempfile

    from dmgateway.bearers.delegation import DelegationPeers, client_context
    from dmgateway.config import DelegationConfig, DelegationPeer

    with tempfile.NamedTemporaryFile("w", suffix=".psk", delete=False) as f:
        f.write(key_hex + "\n")
    config = DelegationConfig(enabled=True, psk_identity=identity, psk_file=f.name,
                              peers=(DelegationPeer("peer", url),))
    context = client_context(config, DelegationPeers(config), config.peers[0])
    os.unlink(f.name)
    agent = Agent(reactor, contextFactory=tlspsk.FixedPolicy(tlspsk.ConnectionCreator(context)),
                  connectTimeout=10)
    d = agent.request(b"GET", url.encode("ascii"))

    def got(response):
        print("STATUS %d" % (response.code,), flush=True)
        return readBody(response).addCallback(lambda body: print(body.decode("latin-1"), flush=True))

    def failed(failure):
        print("ERROR %s" % (failure.getErrorMessage(),), flush=True)
        global exit_code
        exit_code = 1

    d.addCallbacks(got, failed)
    d.addBoth(lambda _: reactor.stop())


exit_code = 0


def main(argv):
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    if argv[0] == "serve":
        serve(*argv[1:])
    else:
        fetch(*argv[1:])
    reactor.callLater(30, reactor.stop)
    reactor.run()
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
