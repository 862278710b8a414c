"""A twisted.web request that refuses oversized bodies before buffering them.

Shared by the DM-2 listeners and the REST API.  The limit is the site's
``max_body``.  A body announced larger (``Content-Length``) is answered 413
as soon as the headers are in; a body of unknown length (chunked) is
answered 413 the moment the running total passes the limit.  Either way the
connection is closed and nothing more of the body is read or kept.
"""

from twisted.web import server


class BodyLimitedRequest(server.Request):
    _refused = False
    _received = 0

    #: (content type, body) of the 413 answer; subclasses word it their way
    def too_large(self, limit):
        return b"text/plain; charset=utf-8", b"request body exceeds the limit of %d bytes\n" % (limit,)

    def refused(self, limit):
        """Called once after a 413 was sent (for logging)."""

    def body_limit(self):
        """The largest body this request may have (the site's ``max_body``)."""
        return self.channel.site.max_body

    def gotLength(self, length):
        if length is not None and length > self.body_limit():
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.body_limit():
            self._refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        if self._refused:
            return
        site = self.channel.site
        observe = getattr(site, "on_request", None)
        if observe is not None:
            # (listener, status, seconds) once answered: request latency metrics
            clock = getattr(site, "reactor", None)
            if clock is None:
                from twisted.internet import reactor as clock
            started = clock.seconds()
            self.notifyFinish().addBoth(
                lambda _: observe(site.listener_name, self.code, clock.seconds() - started))
        super().requestReceived(command, path, version)

    def _refuse(self):
        self._refused = True
        channel = self.channel
        limit = self.body_limit()
        # no "100 Continue" after this answer
        self.requestHeaders.removeHeader(b"expect")
        content_type, body = self.too_large(limit)
        channel.transport.write(
            b"HTTP/1.1 413 Payload Too Large\r\n"
            b"Content-Type: " + content_type + b"\r\n"
            b"Content-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % (len(body),) + body
        )
        channel.loseConnection()
        self.refused(limit)


def peer_of(request):
    """``host:port`` of the client, for logs."""
    address = request.getClientAddress()
    host, port = getattr(address, "host", address), getattr(address, "port", None)
    return "%s:%s" % (host, port) if port is not None else str(host)
