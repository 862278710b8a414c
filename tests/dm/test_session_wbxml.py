"""ServerSession with a WBXML client: the same rules, measured in WBXML bytes."""

from dmgateway.codec import syncml as sm
from dmgateway.codec import wbxml
from dmgateway.dm.effects import JobFinished, JobSpec

from .client import Client, make_device, make_session, server_commands


def wbxml_session(jobs, device=None, **options):
    return make_session(device or make_device(), jobs, encode=wbxml.encode,
                        measure=lambda msg: len(wbxml.encode(msg)), **options)


def answer_all(client, out, tree=None):
    """Answer like a device until the session ends; every reply is size-checked by Client."""
    outcomes = [out]
    while not out.finished:
        assert len(outcomes) < 60
        reply = out.reply
        if reply.final:
            out = client.send(client.answer(reply, tree=tree))
        else:
            codes = {cmd.cmd_id: 213 for cmd in server_commands(reply)
                     if cmd.NAME in ("Add", "Replace") and cmd.items[-1].more_data}
            out = client.send(client.answer(reply, tree=tree, codes=codes,
                                            extra=[sm.Alert(data=sm.ALERT_NEXT_MESSAGE)]), final=False)
        outcomes.append(out)
    return outcomes


def test_wbxml_md5_session_at_1024_bytes():
    commands = [{"op": "Replace", "target": "./Vendor/Settings/Key%02d" % n, "data": "value %d" % n}
                for n in range(30)] + [{"op": "Get", "target": "./DevDetail/SwV"}]
    session = wbxml_session([JobSpec("many", commands)])
    client = Client(session, codec=wbxml, max_msg_size=1024)
    first = client.send(client.package1())
    assert server_commands(first.reply)  # package 2 starts at once: WBXML is compact
    outcomes = answer_all(client, first, tree={"./DevDetail/SwV": "4.2.1"})
    assert sum(1 for o in outcomes if not o.reply.final) >= 1  # several messages
    [finished] = [e for o in outcomes for e in o.effects if isinstance(e, JobFinished)]
    assert finished.state == "done" and finished.results[-1]["data"] == "4.2.1"


def test_wbxml_large_object_out():
    data = "0123456789abcdef" * 300
    session = wbxml_session([JobSpec("lo", [{"op": "Add", "target": "./Blob", "data": data}])])
    client = Client(session, codec=wbxml, max_msg_size=1024)
    outcomes = answer_all(client, client.send(client.package1()))
    chunks = [c for o in outcomes for c in server_commands(o.reply) if c.NAME == "Add"]
    assert len(chunks) >= 5 and "".join(c.items[0].data for c in chunks) == data
    assert chunks[0].items[0].meta.size == len(data)
    [finished] = [e for o in outcomes for e in o.effects if isinstance(e, JobFinished)]
    assert finished.state == "done"


def test_wbxml_hmac_signs_the_wbxml_body():
    device = make_device(client_scheme="hmac", server_scheme="hmac")
    session = wbxml_session([JobSpec("j", [{"op": "Get", "target": "./A"}])], device)
    client = Client(session, codec=wbxml, scheme="hmac")
    out = client.send(client.package1())  # Client checks the MAC over the WBXML bytes
    assert out.body == wbxml.encode(out.reply) and out.hmac_header
    out = client.send(client.answer(out.reply, tree={"./A": "x"}, hdr_code=200))
    assert out.finished
