"""The one error family every reader in :mod:`dmgateway.codec` raises.

A reader turns bytes into a model and raises a :class:`CodecError` (or a
subclass) for anything it cannot accept, never another exception type.  The
error carries where it happened: a byte ``offset`` for binary formats, an
element ``path`` (``SyncML/SyncBody/Get[2]/Item``) for structural errors.
"""


class CodecError(ValueError):
    """Input that is not a valid message of the format being read."""

    def __init__(self, reason, *, offset=None, path=None):
        self.reason = reason
        self.offset = offset
        self.path = path
        super().__init__(self._describe())

    def _describe(self):
        where = []
        if self.offset is not None:
            where.append("at byte %d" % (self.offset,))
        if self.path:
            where.append("at %s" % (self.path,))
        if where:
            return "%s (%s)" % (self.reason, ", ".join(where))
        return self.reason


class XMLCodecError(CodecError):
    """Malformed or unsafe XML."""


class WBXMLCodecError(CodecError):
    """Malformed WBXML: truncated, unknown token, bad string table, ..."""


class ModelError(CodecError):
    """Well-formed markup that is not a valid SyncML / provisioning document."""


class LimitExceeded(CodecError):
    """A document with more elements (commands, items) than the reader was allowed."""


#: what XML 1.0 cannot carry: NUL, the C0 controls but tab/LF/CR, lone
#: surrogates, U+FFFE and U+FFFF (no SyncML message may hold them)
NOT_XML_TEXT = "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"
