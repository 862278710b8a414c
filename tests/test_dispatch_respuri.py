"""The RespURI of a session and the dispatcher's synchronous answers."""

from urllib.parse import parse_qs, urlencode, urlsplit

from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from dmgateway.dispatch import Dispatcher, run_now, session_token
from tests.support import gateway_config


def _dispatcher(public_url, node):
    return Dispatcher(None, gateway_config(public_url=public_url, node_name=node), clock=task.Clock())


class RespURITests(SynchronousTestCase):
    def _same_as_urlencode(self, public_url, node, token):
        dispatcher = _dispatcher(public_url, node)
        separator = "&" if "?" in public_url else "?"
        expected = public_url + separator + urlencode({"s": token})
        self.assertEqual(dispatcher._resp_uri(token), expected)
        self.assertEqual(dispatcher._resp_uri(token), expected)  # from the cached prefix
        self.assertEqual(parse_qs(urlsplit(expected).query)["s"], [token])

    def test_plain_url(self):
        self._same_as_urlencode("http://127.0.0.1:8080/dm", "test-node", session_token("test-node", "ab" * 16))

    def test_url_with_query(self):
        self._same_as_urlencode("https://dm.example/dm?tenant=a", "n1", session_token("n1", "0f" * 16))

    def test_node_name_needing_quotes(self):
        node = "gw 1/ä&s=x"
        self._same_as_urlencode("http://127.0.0.1:8080/dm", node, session_token(node, "cd" * 16))

    def test_token_of_another_form(self):
        """A token without this node's prefix is still encoded whole."""
        self._same_as_urlencode("http://127.0.0.1:8080/dm", "n1", "other~a b&c")


class RunNowTests(SynchronousTestCase):
    def test_finished_without_waiting_is_the_value(self):
        async def answer():
            first = await defer.succeed(1)
            return first + await defer.succeed(2)

        self.assertEqual(run_now(answer()), 3)

    def test_exception_is_a_failed_deferred(self):
        async def broken():
            await defer.succeed(None)
            raise ValueError("no")

        d = run_now(broken())
        self.assertIsInstance(d, defer.Deferred)
        self.failureResultOf(d, ValueError)

    def test_waiting_goes_on_in_a_deferred(self):
        waited = defer.Deferred()
        seen = []

        async def slow():
            seen.append(await defer.succeed("a"))
            seen.append(await waited)
            seen.append(await defer.succeed("c"))
            return seen

        d = run_now(slow())
        self.assertIsInstance(d, defer.Deferred)
        self.assertNoResult(d)
        waited.callback("b")
        self.assertEqual(self.successResultOf(d), ["a", "b", "c"])

    def test_failure_while_waiting(self):
        waited = defer.Deferred()

        async def slow():
            try:
                await waited
            except KeyError:
                return "handled"

        d = run_now(slow())
        waited.errback(KeyError("x"))
        self.assertEqual(self.successResultOf(d), "handled")

    def test_waits_twice(self):
        first, second = defer.Deferred(), defer.Deferred()

        async def slow():
            return (await first) + (await second)

        d = run_now(slow())
        first.callback(1)
        self.assertNoResult(d)
        second.callback(2)
        self.assertEqual(self.successResultOf(d), 3)
