"""SyncML DM message codecs: XML and WBXML over one model.

:func:`decode_message` picks the wire format from the HTTP content type (or,
when that is absent or unknown, from the first bytes) and returns the model
with the encoding it found, so the answer can go out the same way through
:func:`encode_message`.  Both raise only :class:`~.errors.CodecError`
subclasses for bad input.
"""

from .errors import CodecError

__all__ = [
    "XML",
    "WBXML",
    "CONTENT_TYPES",
    "encoding_for_content_type",
    "sniff_encoding",
    "decode_message",
    "encode_message",
]

XML = "xml"
WBXML = "wbxml"

# the media type to send for each encoding (dm-protocol §2.1)
CONTENT_TYPES = {
    XML: "application/vnd.syncml.dm+xml",
    WBXML: "application/vnd.syncml.dm+wbxml",
}

_BY_CONTENT_TYPE = {
    "application/vnd.syncml.dm+xml": XML,
    "application/vnd.syncml+xml": XML,
    "application/vnd.syncml.dm+wbxml": WBXML,
    "application/vnd.syncml+wbxml": WBXML,
}


def encoding_for_content_type(content_type):
    """``"xml"``, ``"wbxml"`` or ``None`` for a Content-Type header value.

    Parameters (``charset``, ``verproto`` ...) and letter case are ignored.
    """
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    if not isinstance(content_type, str):
        return None
    media_type = content_type.split(";", 1)[0].strip(" \t").lower()
    return _BY_CONTENT_TYPE.get(media_type)


def sniff_encoding(body):
    """Guess the encoding from the first bytes: WBXML starts with version 0x00-0x03."""
    first = body[:1]
    if first and first[0] <= 0x03 and body[1:2] != b"<":  # b"\0<" is UTF-16BE XML
        return WBXML
    return XML


def decode_message(body, content_type=None, *, max_elements=None):
    """``(SyncML model, encoding)`` of an HTTP body; encoding is "xml" or "wbxml".

    ``max_elements`` (None: no limit) bounds the elements of the document
    before any model is built: more raise :class:`~.errors.LimitExceeded`.
    """
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise CodecError("message body must be bytes, not %s" % (type(body).__name__,))
    body = bytes(body)
    if not body:
        raise CodecError("empty message body", offset=0)
    encoding = encoding_for_content_type(content_type) or sniff_encoding(body)
    decode = _CODECS.get(encoding) or _codec(encoding)
    return decode[0](body, max_elements=max_elements), encoding


def encode_message(msg, encoding):
    """The bytes of ``msg`` in ``encoding`` ("xml" or "wbxml")."""
    codec = _CODECS.get(encoding)
    if codec is None:
        if encoding != WBXML and encoding != XML:
            raise ValueError("unknown encoding %r" % (encoding,))
        codec = _codec(encoding)
    return codec[1](msg)


# encoding -> (decode, encode), imported on first use (the codecs import this package)
_CODECS = {}


def _codec(encoding):
    if encoding == WBXML:
        from .wbxml import decode, encode
    else:
        from .xml import decode, encode
    codec = _CODECS[WBXML if encoding == WBXML else XML] = (decode, encode)
    return codec
