"""Citizens' phone numbers: one spelling for each number, and a vault so the number itself is
kept only where a message must be sent.

Why a vault: a booking needs the phone twice, for different jobs. Limits and joins ("at most 2
numbers a person a day") need a stable value to compare, never the number: :meth:`PhoneVault.key`
is a keyed HMAC-SHA256, so a copied database cannot be turned back into numbers by hashing the
~100 million Vietnamese mobile numbers (a plain hash could). Sending an SMS needs the number
itself: :meth:`PhoneVault.seal` encrypts it with AES-256-GCM (authenticated: a changed byte is
refused, never decrypted to another number). Both come from one secret file in the data
directory (``phone-vault.key``, mode 0600) and the two uses get separate keys derived from it.

The secret file is deliberately NOT in the database backups (server/backup.py copies only the
database): a backup disk lost with both the ciphertext and its key would give the numbers away.
Keep a copy of the key with ``secrets.json``; without it, sealed phones of a restored database
cannot be opened (their messages are not sent) and the limits' keys change (today's counts reset).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from luot.credentials import write_private

VAULT_FILE = "phone-vault.key"
"""The vault's secret, inside the centre's data directory."""
SEAL_PREFIX = "v1."
_NONCE_BYTES = 12
_AAD = b"luot phone v1"
# Vietnamese mobile numbers since the 2018 renumbering: 0 + 9 digits, the first one 3, 5, 7, 8 or 9.
_MOBILE = re.compile(r"^[35789]\d{8}$")
_SEPARATORS = re.compile(r"[\s.\-()/]")


class PhoneRefused(ValueError):
    """A phone number Luot will not use, with the reason in Vietnamese and English."""

    def __init__(self, message_vi: str, message_en: str) -> None:
        super().__init__(f"{message_vi} / {message_en}")
        self.message_vi = message_vi
        self.message_en = message_en


class SealBroken(ValueError):
    """A sealed phone that this vault cannot open: altered, truncated, or sealed with another key."""


def normalise_phone(raw: str) -> str:
    """``"0912 345 678"``, ``"84912345678"``, ``"+84 91-234-5678"``, ``"0084912345678"`` → ``"+84912345678"``.

    Only Vietnamese mobile numbers are taken (landlines cannot receive the one-time code by SMS);
    the 11-digit numbers retired in 2018 (``01xx``) are refused with their reason."""
    text = _SEPARATORS.sub("", str(raw or "").strip())
    if not text:
        raise PhoneRefused("Vui lòng nhập số điện thoại di động.", "Please enter a mobile phone number.")
    if text.startswith("+"):
        if not text.startswith("+84"):
            raise PhoneRefused("Chỉ nhận số di động Việt Nam (+84).", "Only Vietnamese mobile numbers (+84) are accepted.")
        national = text[3:]
    elif text.startswith("0084"):
        national = text[4:]
    elif text.startswith("84") and len(text) == 11:
        national = text[2:]
    elif text.startswith("0"):
        national = text[1:]
    else:
        national = text
    if national.startswith("0"):  # "+84 0912..." as people often write it
        national = national[1:]
    if not national.isdigit():
        raise PhoneRefused("Số điện thoại chỉ gồm chữ số.", "A phone number has digits only.")
    if len(national) == 10 and national.startswith("1"):
        raise PhoneRefused("Số 11 chữ số (01xx) đã được đổi từ năm 2018; vui lòng nhập số mới 10 chữ số.",
                           "11-digit numbers (01xx) were renumbered in 2018; please enter the new 10-digit number.")
    if not _MOBILE.match(national):
        raise PhoneRefused("Số điện thoại di động không hợp lệ (10 chữ số, bắt đầu bằng 03, 05, 07, 08 hoặc 09).",
                           "Not a valid mobile number (10 digits starting 03, 05, 07, 08 or 09).")
    return "+84" + national


def mask_phone(phone: str) -> str:
    """``+84912345678`` → ``091****678``: what a page may show back to the person who typed it."""
    national = "0" + normalise_phone(phone)[3:]
    return national[:3] + "****" + national[-3:]


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return hmac.new(secret, b"luot phone vault: " + purpose, hashlib.sha256).digest()


class PhoneVault:
    """Keyed hashes and sealed copies of phone numbers, from one secret (see the module docstring)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the phone vault's secret must be at least 32 bytes")
        self._hash_key = _derive(secret, b"key")
        self._aead = AESGCM(_derive(secret, b"seal"))

    @classmethod
    def for_data_dir(cls, data_dir: str | Path) -> "PhoneVault":
        """The vault of a centre: its secret read from ``<data_dir>/phone-vault.key``, created
        (32 random bytes, hex, mode 0600, written atomically) when missing."""
        path = Path(data_dir) / VAULT_FILE
        if not path.exists():
            write_private(path, secrets.token_hex(32) + "\n")
        text = path.read_text(encoding="ascii").strip()
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"{path}: not a phone vault key (64 hex digits expected)") from None
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)  # a copied-in key readable by others: close it again
        return cls(secret)

    def key(self, phone: str) -> str:
        """A stable keyed hash (64 hex digits) of the number, for limits and joins; the same for
        every spelling of one number."""
        return hmac.new(self._hash_key, normalise_phone(phone).encode("ascii"), hashlib.sha256).hexdigest()

    def keyed(self, label: str, value: str) -> str:
        """A keyed hash of any other value tied to a citizen (a network address, a one-time code),
        so those are never stored either; ``label`` keeps the uses apart."""
        return hmac.new(self._hash_key, f"{label}\x00{value}".encode("utf-8"), hashlib.sha256).hexdigest()

    def seal(self, phone: str) -> str:
        """The number encrypted (AES-256-GCM, fresh random nonce: two seals of one number differ)."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, normalise_phone(phone).encode("ascii"), _AAD)
        return SEAL_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def open(self, sealed: str) -> str:
        """The number a :meth:`seal` holds; :class:`SealBroken` when it was altered or is not ours."""
        if not isinstance(sealed, str) or not sealed.startswith(SEAL_PREFIX):
            raise SealBroken("not a sealed phone")
        body = sealed[len(SEAL_PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD).decode("ascii")
        except (ValueError, InvalidTag):
            raise SealBroken("this sealed phone cannot be opened with this centre's key") from None
