"""Gateway configuration: load and check the ``*.ini`` files of a config directory.

The daemon calls :func:`load_config` (raises :class:`ConfigError` listing
every problem) and ``--check-config`` calls :func:`check_config` (one line
per problem, like ``http.ini [http] endpoint: bad endpoint 'tcp:99999':
port out of range (0-65535)``).  The result is a frozen
:class:`GatewayConfig` with one typed section per INI section.

Relative paths in values (``token_file``, ``store = sqlite:var/...``,
``privateKey=`` in endpoints, ...) are relative to the directory the daemon
runs in (its working directory; ``/var/lib/dmgateway`` under systemd), not
to the config directory.
"""

from dmgateway.config.checks import endpoint_parameters, parse_host_port, split_endpoint
from dmgateway.config.bearers import ModemConfig, SipConfig, SmppLinkConfig
from dmgateway.config.delegation import DelegationConfig, DelegationPeer
from dmgateway.config.gateway import (
    ApiConfig, AuthConfig, HttpConfig, HttpsConfig, LoggingConfig, MetricsConfig, ServerConfig,
)
from dmgateway.config.loader import FILES, GatewayConfig, check_config, load_config
from dmgateway.config.problems import ConfigError, Problem
from dmgateway.config.services import SnmpConfig

__all__ = [
    "FILES", "ApiConfig", "AuthConfig", "ConfigError", "DelegationConfig", "DelegationPeer",
    "GatewayConfig", "HttpConfig", "HttpsConfig", "LoggingConfig", "MetricsConfig",
    "ModemConfig", "Problem", "ServerConfig", "SipConfig", "SmppLinkConfig", "SnmpConfig",
    "check_config", "endpoint_parameters", "load_config", "parse_host_port", "split_endpoint",
]
