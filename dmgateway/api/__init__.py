"""
The northbound REST API v1 (DESIGN §4): resources, validation, JSON views
and webhooks.  The interface of the handlers it calls (``ApiHandlers``,
implemented by :mod:`dmgateway.handlers`) is in :mod:`dmgateway.api.service`.
"""
