"""dmgateway.endpoints: one splitter of endpoint strings, read as Twisted reads them."""

import re
from pathlib import Path

import pytest
from twisted.internet.endpoints import _parse as twisted_parse

from dmgateway.config.checks import check_endpoint, endpoint_parameters
from dmgateway.endpoints import EndpointSyntaxError, split_endpoint, split_parameters

CONF = Path(__file__).resolve().parent.parent / "conf"

TRICKY = [
    "tcp:8080",
    "tcp:8080:interface=127.0.0.1",
    "tcp:a=b=c",
    r"unix:/tmp/a\:b:mode=600",
    r"unix:/tmp/a\=b",
    r"unix:address=/tmp/x\=y\:z",
    r"tcp6:8080:interface=\:\:1",
    r"ssl:8443:privateKey=/k\:ey.pem:certKey=c\\d.pem",
    r"ssl:8443:privateKey=k=\=.pem",
    "tcp:8080:backlog=1:backlog=2",
    "port=80:tcp",
    "tcp::",
    "haproxy:tcp:8080:interface=127.0.0.1",
]


def as_twisted(description):
    """What Twisted's own parser makes of ``description``, in split_endpoint's shape."""
    args, kwargs = twisted_parse(description)
    return args[0], args[1:], kwargs


def conf_endpoints():
    """Every ``endpoint =`` example in conf/*.ini, set or commented out."""
    for path in sorted(CONF.glob("*.ini")):
        for line in path.read_text().splitlines():
            match = re.match(r"#?\s*endpoint\s*=\s*(\S+)\s*$", line)
            if match:
                yield path.name, match.group(1)


@pytest.mark.parametrize("description", TRICKY)
def test_split_endpoint_reads_as_twisted_does(description):
    assert split_endpoint(description) == as_twisted(description)


def test_escaped_colon_and_equals_are_plain_text():
    assert split_endpoint(r"unix:/tmp/a\:b:mode=600") == ("unix", ["/tmp/a:b"], {"mode": "600"})
    assert split_endpoint(r"unix:/tmp/a\=b") == ("unix", ["/tmp/a=b"], {})
    assert split_endpoint(r"ssl:8443:interface=127.0.0.1:privateKey=/k\:ey.pem:certKey=c.pem") == (
        "ssl", ["8443"], {"interface": "127.0.0.1", "privateKey": "/k:ey.pem", "certKey": "c.pem"})
    assert split_endpoint("tcp:a=b=c") == ("tcp", [], {"a": "b=c"})


def test_split_parameters_keeps_order_and_repeats():
    assert split_parameters(r"tcp:80:a=1:a=2:b\=c") == [("tcp",), ("80",), ("a", "1"), ("a", "2"),
                                                        ("b=c",)]


@pytest.mark.parametrize("description", ["", ":80", "a=b", "tcp:80\\"])
def test_no_type_or_lone_backslash_is_a_syntax_error(description):
    with pytest.raises(EndpointSyntaxError):
        split_endpoint(description)


def test_the_conf_files_have_endpoint_examples():
    assert len(list(conf_endpoints())) >= 6


@pytest.mark.parametrize("name,description", list(conf_endpoints()))
def test_check_config_and_the_listener_agree_on_the_conf_examples(name, description):
    server = name != "smpp.ini"  # the SMSC link is the only client endpoint
    assert check_endpoint(description, server=server) == []
    kind, args, kwargs = split_endpoint(description)  # what the listener reads
    assert (kind, args, kwargs) == as_twisted(description)
    named = endpoint_parameters(description, server=server)  # what --check-config reads
    assert {key: named[key] for key in kwargs} == kwargs
    assert [named[key] for key in named if key not in kwargs] == args
