"""Builds the API listener's site from the configuration: token, limits, /metrics."""

import os
import secrets

from twisted.logger import Logger

from dmgateway.api.resources import TokenCheck, build_site

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


def api_site(handlers, config, reactor=None, health=None, metrics=None):
    """The API listener's site; ``site.token`` is its :class:`TokenCheck`.

    ``health`` is a :class:`~dmgateway.monitor.health.HealthCheck` for
    ``/healthz`` and ``/readyz``; ``metrics`` a
    :class:`~dmgateway.monitor.metrics.GatewayMetrics` served at
    ``/metrics`` by prometheus-client's Twisted resource.
    """
    from dmgateway.monitor.health import HealthResource

    if metrics is not None:
        from prometheus_client.twisted import MetricsResource

        metrics = MetricsResource(metrics.registry)
    token = TokenCheck(read_token(config.api.token_file))
    unauthenticated = {}
    if health is not None:
        unauthenticated[b"healthz"] = HealthResource(health, ready=False)
        unauthenticated[b"readyz"] = HealthResource(health, ready=True)
    if config.api.console:
        from dmgateway.console import ConsoleResource

        unauthenticated[b"console"] = ConsoleResource()
    site = build_site(
        handlers,
        token,
        metrics_resource=metrics,
        metrics_token=config.metrics.require_token,
        unauthenticated=unauthenticated,
        max_body=config.api.max_body,
        reactor=reactor,
    )
    site.token = token
    site.upload_limit = config.functions.max_package_size
    return site
