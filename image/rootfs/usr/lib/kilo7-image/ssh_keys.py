"""An SSH public key line, checked the way sshd will read it: the key's own bytes parsed
to the end (a paste cut short would lock its owner out once it replaced a good key)."""

from __future__ import annotations

import base64

# Type -> how many length-prefixed fields follow the type inside the key (mpints and
# strings alike), and the curve an ECDSA type names.
FIELDS = {
    'ssh-ed25519': 1,  # the 32-byte key
    'sk-ssh-ed25519@openssh.com': 2,  # the key, the application
    'ssh-rsa': 2,  # e, n
    'ecdsa-sha2-nistp256': 2,  # curve, point
    'ecdsa-sha2-nistp384': 2,
    'ecdsa-sha2-nistp521': 2,
    'sk-ecdsa-sha2-nistp256@openssh.com': 3,  # curve, point, application
}
ED25519_BYTES = 32
RSA_MIN_BITS = 1024
# Uncompressed points: 0x04 then two coordinates.
POINT_BYTES = {'nistp256': 65, 'nistp384': 97, 'nistp521': 133}


class BadKey(ValueError):
    """Why the line is not a usable public key."""


def check(line: str) -> str:
    """``line`` if it is one usable public key ("TYPE BASE64 [comment]"), else BadKey."""
    kind, _, rest = line.partition(' ')
    if kind not in FIELDS:
        if '=' in kind or ',' in kind:
            raise BadKey('options before the key are not supported: give the key alone')
        raise BadKey(f'{kind[:40]!r} is not an SSH public key type')
    try:
        blob = base64.b64decode(rest.strip().split(' ', 1)[0], validate=True)
    except ValueError:
        raise BadKey('the key is not base64') from None
    fields = _fields(blob)
    if fields is None or len(fields) != 1 + FIELDS[kind] or fields[0] != kind.encode():
        raise BadKey(f'the key is not a whole {kind} key (cut short or mistyped?)')
    _check_material(kind, fields[1:])
    return line


def _fields(blob: bytes) -> list[bytes] | None:
    """The length-prefixed fields of ``blob``, or None if one runs past its end."""
    fields, at = [], 0
    while at < len(blob):
        if at + 4 > len(blob):
            return None
        size = int.from_bytes(blob[at:at + 4], 'big')
        at += 4
        if at + size > len(blob):
            return None
        fields.append(blob[at:at + size])
        at += size
    return fields


def _check_material(kind: str, material: list[bytes]) -> None:
    if 'ed25519' in kind:
        if len(material[0]) != ED25519_BYTES:
            raise BadKey(f'the key is not a whole {kind} key (cut short or mistyped?)')
    elif kind == 'ssh-rsa':
        if int.from_bytes(material[1], 'big').bit_length() < RSA_MIN_BITS:
            raise BadKey(f'an RSA key needs at least {RSA_MIN_BITS} bits')
    else:
        curve = kind.split('-')[2].split('@')[0]
        if material[0] != curve.encode() or len(material[1]) != POINT_BYTES[curve]:
            raise BadKey(f'the key is not a whole {kind} key (cut short or mistyped?)')
