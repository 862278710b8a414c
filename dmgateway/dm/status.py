"""SyncML response codes as DM uses them (dm-protocol §7), and what they mean to a job."""

OK = 200
ACCEPTED = 202
AUTHENTICATED = 212
CHUNK_ACCEPTED = 213
CANCELLED = 214
NOT_EXECUTED = 215
ATOMIC_ROLLBACK_OK = 216
NOT_MODIFIED = 304
BAD_REQUEST = 400
INVALID_CREDENTIALS = 401
FORBIDDEN = 403
NOT_FOUND = 404
NOT_ALLOWED = 405
OPTIONAL_FEATURE_NOT_SUPPORTED = 406
MISSING_CREDENTIALS = 407
INCOMPLETE_COMMAND = 412
TOO_LARGE = 413
SIZE_MISMATCH = 424
COMMAND_FAILED = 500
ATOMIC_FAILED = 507
DTD_VERSION_NOT_SUPPORTED = 505
PROTOCOL_VERSION_NOT_SUPPORTED = 513

NAMES = {
    101: "In progress",
    200: "OK",
    201: "Item added",
    202: "Accepted for processing",
    203: "Non-authoritative response",
    204: "No content",
    205: "Reset content",
    206: "Partial content",
    207: "Conflict resolved with merge",
    208: "Conflict resolved with client's command winning",
    209: "Conflict resolved with duplicate",
    210: "Delete without archive",
    211: "Item not deleted",
    212: "Authentication accepted",
    213: "Chunked item accepted and buffered",
    214: "Operation cancelled",
    215: "Not executed",
    216: "Atomic roll back OK",
    300: "Multiple choices",
    301: "Moved permanently",
    302: "Found",
    303: "See other URI",
    304: "Not modified",
    305: "Use proxy",
    400: "Bad request",
    401: "Invalid credentials",
    402: "Payment required",
    403: "Forbidden",
    404: "Not found",
    405: "Command not allowed",
    406: "Optional feature not supported",
    407: "Missing credentials",
    408: "Request timeout",
    409: "Update conflict",
    410: "Gone",
    411: "Size required",
    412: "Incomplete command",
    413: "Request entity too large",
    414: "URI too long",
    415: "Unsupported media type or format",
    416: "Requested size too big",
    417: "Retry later",
    418: "Already exists",
    419: "Conflict resolved with server data",
    420: "Device full",
    421: "Unknown search grammar",
    422: "Bad CGI script",
    423: "Soft-delete conflict",
    424: "Size mismatch",
    425: "Permission denied",
    500: "Command failed",
    501: "Command not implemented",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
    505: "DTD version not supported",
    506: "Processing error",
    507: "Atomic failed",
    508: "Refresh required",
    509: "Reserved",
    510: "Data store failure",
    511: "Server failure",
    512: "Synchronization failed",
    513: "Protocol version not supported",
    514: "Operation cancelled",
    516: "Atomic roll back failed",
    517: "Atomic response too large to fit",
}


def name(code):
    """A human-readable name for a status code (``"Status 299"`` if unknown)."""
    return NAMES.get(code, "Status %s" % (code,))


def describe(code):
    """``"404 Not found"``: a code with its name, for messages and logs."""
    if code is None:
        return "no status"
    return "%s %s" % (code, NAMES.get(code, "(unknown)"))


def is_success(code):
    """True for a final status meaning the command did what was asked.

    2xx counts, except 213 (a chunk buffered: not final), 214 (cancelled),
    215 (not executed) and 216 (rolled back).  3xx (304 is the "No" of a
    confirmation alert), 4xx and 5xx are failures.
    """
    return isinstance(code, int) and 200 <= code <= 212


def is_auth_challenge(code):
    return code in (INVALID_CREDENTIALS, MISSING_CREDENTIALS)
