"""The DM status codes, node properties and TNDS content types that the tree
(:mod:`.tree`) and TNDS (:mod:`.tnds`) share; :mod:`.tree` re-exports them."""

OK = 200
BAD_REQUEST = 400
NOT_FOUND = 404
NOT_ALLOWED = 405
NOT_SUPPORTED = 406
TOO_LARGE = 413
BAD_URI = 414
BAD_FORMAT = 415
ALREADY_EXISTS = 418
PERMISSION_DENIED = 425
COMMAND_FAILED = 500

PROPERTIES = ("ACL", "Format", "Name", "Size", "Title", "TStamp", "Type", "VerNo")
TNDS_XML = "application/vnd.syncml.dmtnds+xml"
TNDS_WBXML = "application/vnd.syncml.dmtnds+wbxml"
TNDS_TYPES = (TNDS_XML, TNDS_WBXML)
