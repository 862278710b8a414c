"""Builds the API listener's site from the configuration: token, limits, /metrics."""

from dmgateway.api.resources import build_site
from dmgateway.monitor.metrics import MetricsResource


class ConfigurationError(Exception):
    """The API cannot start with this configuration (e.g. an empty token file)."""


def read_token(path):
    try:
        with open(path, "rb") as f:
            token = f.read().strip()
    except OSError as e:
        raise ConfigurationError("cannot read the API token file %s: %s" % (path, e.strerror or e))
    if not token:
        raise ConfigurationError("the API token file %s is empty" % (path,))
    return token


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
