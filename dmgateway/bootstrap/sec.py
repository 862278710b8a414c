"""Bootstrap security: the SEC method and MAC of a pushed bootstrap (dm-bootstrap-cp §3).

::

    mac = compute_mac("USERPIN", wbxml, pin="1234")        # "4332FD96..."
    verify_mac("USERPIN", wbxml, mac, pin="1234")           # True

``MAC = HMAC-SHA1(K, the WBXML document)`` written as 40 upper-case hex
digits.  The key K depends on the method:

* ``NETWPIN``: the IMSI in semi-octet form (:func:`imsi_key`);
* ``USERPIN``: the PIN's ASCII digits;
* ``USERNETWPIN``: the IMSI key followed by the PIN's ASCII digits;
* ``USERPINMAC``: the PIN's ASCII digits; the user is given the PIN
  followed by as many MAC digits (:func:`userpinmac_code`) and the device
  checks those digits, not the MAC parameter (what a server should put in
  the MAC parameter for this method is unconfirmed; we send the HMAC with
  the PIN key).

Methods are named as in WAP ProvBoot; the DM 1.2 Security names
(``NETWORKID``, ``USERPIN_NETWORKID``) and the WSP codes 0..3 are read as
the same methods.  Every refusal is a :class:`SecurityError`.
"""

import hashlib
import hmac

__all__ = [
    "METHODS",
    "SecurityError",
    "check_imsi",
    "check_pin",
    "compute_mac",
    "imsi_key",
    "key_for",
    "method_code",
    "method_name",
    "userpinmac_code",
    "userpinmac_digits",
    "verify_mac",
]

#: ProvBoot method name -> WSP SEC value
METHODS = {"NETWPIN": 0, "USERPIN": 1, "USERNETWPIN": 2, "USERPINMAC": 3}
_ALIASES = {"NETWORKID": "NETWPIN", "USERPIN_NETWORKID": "USERNETWPIN"}
_NAMES = {code: name for name, code in METHODS.items()}
#: USERPINMAC needs at least this many PIN digits (and as many MAC digits)
MIN_PINMAC_DIGITS = 5
MAX_PIN_DIGITS = 32


class SecurityError(ValueError):
    """A method, PIN or IMSI that cannot secure (or check) a bootstrap."""


def method_name(method):
    """The ProvBoot name of ``method`` (a name, an alias or a WSP code 0..3)."""
    if isinstance(method, int) and not isinstance(method, bool):
        if method in _NAMES:
            return _NAMES[method]
        raise SecurityError("unknown SEC code %d" % (method,))
    if isinstance(method, str):
        name = method.strip().upper()
        name = _ALIASES.get(name, name)
        if name in METHODS:
            return name
        if name.isdigit() and int(name) in _NAMES:
            return _NAMES[int(name)]
    raise SecurityError("unknown SEC method %r" % (method,))


def method_code(method):
    """The WSP SEC value (0..3) of ``method``."""
    return METHODS[method_name(method)]


def check_pin(pin, *, min_digits=1):
    """``pin`` as ASCII bytes; it must be 1..32 decimal digits."""
    if not isinstance(pin, str) or not pin or not pin.isascii() or not pin.isdigit():
        raise SecurityError("the PIN must be decimal digits")
    if not min_digits <= len(pin) <= MAX_PIN_DIGITS:
        raise SecurityError("the PIN must have %d to %d digits" % (min_digits, MAX_PIN_DIGITS))
    return pin.encode("ascii")


def check_imsi(imsi):
    """``imsi`` as text: 6..15 decimal digits."""
    if not isinstance(imsi, str) or not imsi.isascii() or not imsi.isdigit() \
            or not 6 <= len(imsi) <= 15:
        raise SecurityError("the IMSI must be 6 to 15 decimal digits")
    return imsi


def imsi_key(imsi):
    """The NETWPIN key: the IMSI as semi-octets, as on the SIM (§3.3).

    Odd length: ``"9"`` + digits; even: ``"1"`` + digits + ``"F"``; then
    the two nibbles of every byte are swapped.
    """
    digits = check_imsi(imsi)
    text = "9" + digits if len(digits) % 2 else "1" + digits + "F"
    raw = bytes.fromhex(text)
    return bytes(((b & 0x0F) << 4) | (b >> 4) for b in raw)


def key_for(method, *, pin=None, imsi=None):
    """The HMAC key of ``method`` from the PIN and/or IMSI it needs."""
    name = method_name(method)
    if name == "NETWPIN":
        if not imsi:
            raise SecurityError("NETWPIN needs the device's IMSI")
        return imsi_key(imsi)
    if pin is None or pin == "":
        raise SecurityError("%s needs a PIN" % (name,))
    if name == "USERPIN":
        return check_pin(pin)
    if name == "USERPINMAC":
        return check_pin(pin, min_digits=MIN_PINMAC_DIGITS)
    if not imsi:
        raise SecurityError("USERNETWPIN needs the device's IMSI")
    return imsi_key(imsi) + check_pin(pin)


def _hmac(key, document):
    if not isinstance(document, (bytes, bytearray, memoryview)):
        raise SecurityError("the document must be bytes")
    return hmac.new(key, bytes(document), hashlib.sha1).digest()


def compute_mac(method, document, *, pin=None, imsi=None):
    """The MAC parameter: HMAC-SHA1 of ``document``, 40 upper-case hex digits."""
    return _hmac(key_for(method, pin=pin, imsi=imsi), document).hex().upper()


def userpinmac_digits(pin, document):
    """The MAC digits that follow ``pin`` for USERPINMAC: ``48 + D[i] mod 10``."""
    raw = check_pin(pin, min_digits=MIN_PINMAC_DIGITS)
    digest = _hmac(raw, document)
    return "".join(chr(48 + digest[i] % 10) for i in range(len(raw)))


def userpinmac_code(pin, document):
    """What the user types for USERPINMAC: the PIN followed by its MAC digits."""
    return pin + userpinmac_digits(pin, document)


def verify_mac(method, document, mac, *, pin=None, imsi=None):
    """Whether ``mac`` (any case) is the MAC of ``document``; False for any bad input.

    For USERPINMAC ``pin`` is what the user typed (PIN and MAC digits);
    ``mac`` is not used.
    """
    try:
        name = method_name(method)
        if name == "USERPINMAC":
            if not isinstance(pin, str) or len(pin) % 2 or len(pin) < 2 * MIN_PINMAC_DIGITS:
                return False
            half = len(pin) // 2
            expected = userpinmac_digits(pin[:half], document)
            return hmac.compare_digest(expected.encode("ascii"), pin[half:].encode("ascii", "replace"))
        if not isinstance(mac, str) or not mac.isascii():
            return False
        expected = compute_mac(name, document, pin=pin, imsi=imsi)
        return hmac.compare_digest(expected.encode("ascii"), mac.strip().upper().encode("ascii"))
    except SecurityError:
        return False
