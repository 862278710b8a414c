"""
The northbound REST API v1 (DESIGN §4): resources, validation, webhooks and
the C{dmgw api} command.  The service interface is in L{service}.
"""
