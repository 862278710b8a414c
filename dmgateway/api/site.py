"""Builds the API listener's site from the configuration: token, limits, /metrics."""

import os
import secrets

from twisted.logger import Logger

from dmgateway.api.resources import build_site
from dmgateway.monitor.metrics import MetricsResource

log = Logger()


class ConfigurationError(Exception):
    """The API cannot start with this configuration (e.g. an empty token file)."""


def read_token(path):
    """The API token in ``path``; a missing file is created first (see
    :func:`create_token_file`)."""
    if not os.path.lexists(path):
        create_token_file(path)
    try:
        with open(path, "rb") as f:
            token = f.read().strip()
    except OSError as e:
        raise ConfigurationError("cannot read the API token file %s: %s" % (path, e.strerror or e))
    if not token:
        raise ConfigurationError("the API token file %s is empty" % (path,))
    return token


def create_token_file(path):
    """Write a new random token to ``path``, readable by this user only
    (mode 0600; missing directories 0700).  Never overwrites: a file that
    appeared meanwhile is left as it is."""
    try:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as e:
        raise ConfigurationError("cannot create the API token file %s: %s" % (path, e.strerror or e))
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    log.info("created the REST API token file {path} (mode 0600)", path=path)


def api_site(dispatcher, config, reactor=None):
    metrics = None
    if config.metrics.enabled:
        metrics = MetricsResource(dispatcher.metrics)
    return build_site(
        dispatcher,
        read_token(config.api.token_file),
        metrics_resource=metrics,
        max_body=config.api.max_body,
        reactor=reactor,
    )
