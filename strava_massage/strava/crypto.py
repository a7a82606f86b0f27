"""Tokens at rest: MultiFernet over TOKEN_KEYS, newest key first."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenBox:
    """Encrypts with the newest key, decrypts with any; rotation re-encrypts under the newest."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ValueError("TOKEN_KEYS holds no key")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except ValueError as exc:
            raise ValueError(
                "TOKEN_KEYS must be comma-separated Fernet keys "
                "(make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from exc

    def seal(self, plaintext: str) -> bytes:
        """Encrypt a token for storage."""
        return self._fernet.encrypt(plaintext.encode())

    def open(self, ciphertext: bytes) -> str:
        """Decrypt a stored token; InvalidToken if no key fits."""
        return self._fernet.decrypt(ciphertext).decode()

    def rotate(self, ciphertext: bytes) -> bytes:
        """Re-encrypt under the newest key."""
        return self._fernet.rotate(ciphertext)


__all__ = ["InvalidToken", "TokenBox"]
