"""Client-side encryption and checksums of everything the archive stores.

An object is sealed in frames of at most 8 MiB, each AES-256-GCM with its own nonce (a random
8-byte prefix per object and the frame's number) and the object's name, the frame's number and
whether it is the last frame as associated data: a frame moved to another object, reordered, or a
file cut short fails to open. Frames let a base backup of several gigabytes be sealed and opened
as a stream. The key (32 bytes, a Pulumi secret) never leaves this machine; the object store sees
ciphertext only.

Two SHA-256 digests travel in the manifest: of the ciphertext (checked before anything is opened,
so a corrupted object is named at once) and of the plaintext (checked after).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"WCDRSEAL1"
FRAME = 8 * 1024 * 1024
_LENGTH = struct.Struct(">I")
TAG_BYTES = 16


class ChecksumError(Exception):
    """An object is not what the manifest says it is: corrupted, truncated or replaced. The
    message names the object."""


class ArchiveKeyError(Exception):
    """The archive key is missing or malformed (the message never shows it)."""


def parse_key(text: str) -> bytes:
    """The archive key as configured: 32 bytes, base64 (what `pulumi_random.RandomId(byte_length=32).b64_std` gives)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ArchiveKeyError("the archive key is not base64 (allowed: 32 random bytes, base64)") from None
    if len(key) != 32:
        raise ArchiveKeyError(f"the archive key is {len(key)} bytes (allowed: 32 random bytes, base64)")
    return key


@dataclass(frozen=True)
class Sealed:
    size: int  # plaintext bytes
    sha256_plain: str
    sha256_sealed: str


def _aad(name: str, index: int, last: bool) -> bytes:
    return f"{name}\0{index}\0{int(last)}".encode()


def seal_stream(key: bytes, name: str, source: BinaryIO, target: BinaryIO) -> Sealed:
    """Seal everything `source` yields into `target` as the object `name`."""
    aes, prefix = AESGCM(key), os.urandom(8)
    plain, sealed, size = hashlib.sha256(), hashlib.sha256(), 0

    def write(chunk: bytes) -> None:
        sealed.update(chunk)
        target.write(chunk)

    write(MAGIC + prefix)
    index, current = 0, source.read(FRAME)
    while True:
        upcoming = source.read(FRAME) if current else b""
        last = not upcoming
        plain.update(current)
        size += len(current)
        box = aes.encrypt(prefix + struct.pack(">I", index), current, _aad(name, index, last))
        write(_LENGTH.pack(len(box)) + box)
        if last:
            return Sealed(size, plain.hexdigest(), sealed.hexdigest())
        index, current = index + 1, upcoming


def seal_bytes(key: bytes, name: str, data: bytes) -> tuple[bytes, Sealed]:
    import io

    out = io.BytesIO()
    sealed = seal_stream(key, name, io.BytesIO(data), out)
    return out.getvalue(), sealed


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sealed(path: Path, name: str, expected_sha256: str) -> None:
    """Refuse an object whose ciphertext is not the one the manifest recorded."""
    got = sha256_file(path)
    if got != expected_sha256:
        raise ChecksumError(f"checksum mismatch for object {name}: the manifest says sha256 {expected_sha256}, "
                            f"the object store returned {got}; the object is corrupted or was replaced")


def open_frames(key: bytes, name: str, source: BinaryIO) -> Iterator[bytes]:
    """The plaintext of a sealed object, frame by frame; ChecksumError naming `name` when any frame
    does not open (wrong key, tampered, truncated)."""
    aes = AESGCM(key)
    head = source.read(len(MAGIC) + 8)
    if head[: len(MAGIC)] != MAGIC or len(head) != len(MAGIC) + 8:
        raise ChecksumError(f"object {name} is not a sealed archive object (bad header)")
    prefix, index = head[len(MAGIC):], 0
    while True:
        raw = source.read(_LENGTH.size)
        if len(raw) != _LENGTH.size:
            raise ChecksumError(f"object {name} is truncated after frame {index}")
        (length,) = _LENGTH.unpack(raw)
        box = source.read(length)
        if len(box) != length or length < TAG_BYTES:
            raise ChecksumError(f"object {name} is truncated in frame {index}")
        last = source.peek(1) == b"" if hasattr(source, "peek") else _at_end(source)
        try:
            yield aes.decrypt(prefix + struct.pack(">I", index), box, _aad(name, index, last))
        except InvalidTag:
            raise ChecksumError(f"object {name} does not decrypt (frame {index}): corrupted, replaced, "
                                "or sealed with another archive key") from None
        if last:
            return
        index += 1


def _at_end(source: BinaryIO) -> bool:
    here = source.tell()
    end = source.seek(0, os.SEEK_END)
    source.seek(here)
    return here == end


def open_to(key: bytes, name: str, path: Path, target: BinaryIO, sha256_plain: str) -> int:
    """Write the plaintext of the sealed file `path` (object `name`) to `target`; its size."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as source:
        for chunk in open_frames(key, name, source):
            digest.update(chunk)
            size += len(chunk)
            target.write(chunk)
    if digest.hexdigest() != sha256_plain:
        raise ChecksumError(f"checksum mismatch for object {name}: its plaintext is not what was archived")
    return size
