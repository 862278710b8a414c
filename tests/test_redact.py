"""dmgateway.redact: the one mask for secrets in URIs and log lines."""

import pytest

from dmgateway.config.checks import check_http_url, check_store
from dmgateway.redact import is_secret_name, redact_text, redact_uri


@pytest.mark.parametrize("uri,shown", [
    ("postgresql://gw:s3cr%40t@db.example:5432/dm?x=1", "postgresql://gw:***@db.example:5432/dm?x=1"),
    ("postgresql://gw@db/dm", "postgresql://gw@db/dm"),
    ("postgresql://gw@db/dm?sslmode=require&password=s3cret&x=1",
     "postgresql://gw@db/dm?sslmode=require&password=***&x=1"),
    ("postgresql:///dm?host=/run/pg&user=gw&password=pw&sslpassword=k3y",
     "postgresql:///dm?host=/run/pg&user=gw&password=***&sslpassword=***"),
    ("https://u:pw@hooks.example/in?token=abc&v=1#top", "https://u:***@hooks.example/in?token=***&v=1#top"),
    ("sqlite:var/dmgateway.sqlite", "sqlite:var/dmgateway.sqlite"),
])
def test_redact_uri_masks_the_user_info_password_and_secret_parameters(uri, shown):
    assert redact_uri(uri) == shown


def test_redact_uri_path_only_keeps_scheme_host_port_and_path():
    assert redact_uri("https://user:pw@hooks.example:8443/in?code=abc#x", path_only=True) == (
        "https://hooks.example:8443/in")


def test_redact_text_masks_inside_messages():
    text = ('connection to "postgresql://gw:pw@db/dm?sslpassword=k3y&sslmode=require" failed; '
            "conninfo password=pw host=db")
    assert redact_text(text) == (
        'connection to "postgresql://gw:***@db/dm?sslpassword=***&sslmode=require" failed; '
        "conninfo password=*** host=db")
    assert redact_text("no secret here: a=b") == "no secret here: a=b"


def test_secret_names():
    assert all(map(is_secret_name, ["password", "sslpassword", "api_token", "PSK", "community"]))
    assert not any(map(is_secret_name, ["user", "host", "sslmode", "passfile"]))


@pytest.mark.parametrize("uri", [
    "postgresql://gw:pw@db:99999/dm?sslpassword=k3y",
    "postgresql://gw:pw@db/dm?sslpassword=k3y&bogus_option=1",
    "mysql://gw:pw@db/dm?sslpassword=k3y",
])
def test_check_config_never_repeats_a_store_secret(uri):
    problems = check_store(uri)
    assert problems and not any("pw" in p or "k3y" in p for p in problems)


def test_check_config_never_repeats_a_url_password():
    problems = check_http_url("ftp://hook:pw@hooks.example/in")
    assert problems == ["bad URL 'ftp://hook:***@hooks.example/in': must be an absolute http or https URL"]


@pytest.mark.parametrize("text,shown", [
    ("host=db password='s3 cr3t' user=gw", "host=db password=*** user=gw"),
    ('conninfo password="s3cr3t" sslpassword=\'k 3y\'', "conninfo password=*** sslpassword=***"),
    ("password='' host=db", "password=*** host=db"),
])
def test_redact_text_masks_quoted_values_whole(text, shown):
    # libpq's conninfo quotes a value with spaces; the mask before redact.py
    # (password=\S+) hid these, the first redact.py left them in the clear
    assert redact_text(text) == shown


def test_check_config_never_repeats_a_password_holding_a_slash():
    # a '/' not percent-encoded ends the host part: urlsplit then reads the
    # start of the password as the port, and its error quoted it
    (problem,) = check_store("postgresql://gw:s3/cr3t@db/dm")
    assert "s3" not in problem and "cr3t" not in problem
    assert "port" in problem


@pytest.mark.parametrize("uri,shown", [
    ("postgresql://gw:s3/cr3t@db/dm", "postgresql://gw:***@db/dm"),
    ("postgresql://gw:p@ss@db/dm?x=a@b", "postgresql://gw:***@db/dm?x=a@b"),
])
def test_a_password_holding_a_slash_or_an_at_is_masked_whole(uri, shown):
    assert redact_uri(uri) == shown
    assert redact_text("connecting to %s failed" % (uri,)) == "connecting to %s failed" % (shown,)
