"""Client-side sealing of archive objects: what opens, and what is refused by name."""

from __future__ import annotations

import base64
import io
import os
import re

import pytest

from drctl.backup import sealing
from drctl.backup.sealing import ArchiveKeyError, ChecksumError

KEY = os.urandom(32)


@pytest.fixture(autouse=True)
def small_frames(monkeypatch):
    monkeypatch.setattr(sealing, "FRAME", 1000)  # many frames from small data


def sealed_file(tmp_path, name: str, data: bytes):
    box, info = sealing.seal_bytes(KEY, name, data)
    path = tmp_path / "object"
    path.write_bytes(box)
    return path, box, info


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 5500])
def test_a_sealed_object_opens_to_its_plaintext(tmp_path, size):
    data = os.urandom(size)
    path, box, info = sealed_file(tmp_path, "binlog/s/00000001.seg", data)
    out = io.BytesIO()
    assert sealing.open_to(KEY, "binlog/s/00000001.seg", path, out, info.sha256_plain) == size
    assert out.getvalue() == data
    assert size < 16 or data not in box  # a short plaintext may occur in any random bytes by chance
    sealing.check_sealed(path, "binlog/s/00000001.seg", sealing.sha256_bytes(box))


def test_a_changed_byte_is_a_checksum_error_naming_the_object(tmp_path):
    path, box, _ = sealed_file(tmp_path, "base/x/dump.sql.seg", os.urandom(3000))
    expected = sealing.sha256_bytes(box)
    path.write_bytes(box[:-1] + bytes([box[-1] ^ 1]))
    with pytest.raises(ChecksumError, match=re.escape("checksum mismatch for object base/x/dump.sql.seg")):
        sealing.check_sealed(path, "base/x/dump.sql.seg", expected)
    with pytest.raises(ChecksumError, match=re.escape("object base/x/dump.sql.seg does not decrypt")):
        sealing.open_to(KEY, "base/x/dump.sql.seg", path, io.BytesIO(), "")


def test_an_object_under_another_name_does_not_open(tmp_path):
    path, _, info = sealed_file(tmp_path, "binlog/s/00000001.seg", b"x" * 2500)
    with pytest.raises(ChecksumError, match=re.escape("object binlog/s/00000002.seg does not decrypt")):
        sealing.open_to(KEY, "binlog/s/00000002.seg", path, io.BytesIO(), info.sha256_plain)


def test_a_truncated_object_does_not_open_even_on_a_frame_boundary(tmp_path):
    path, box, info = sealed_file(tmp_path, "n", b"y" * 2500)  # three frames
    frame = 4 + 1000 + sealing.TAG_BYTES
    path.write_bytes(box[: len(sealing.MAGIC) + 8 + 2 * frame])  # the last frame dropped
    with pytest.raises(ChecksumError, match=re.escape("object n does not decrypt")):
        sealing.open_to(KEY, "n", path, io.BytesIO(), info.sha256_plain)


def test_another_key_does_not_open_it(tmp_path):
    path, _, info = sealed_file(tmp_path, "n", b"z" * 10)
    with pytest.raises(ChecksumError, match=re.escape("sealed with another archive key")):
        sealing.open_to(os.urandom(32), "n", path, io.BytesIO(), info.sha256_plain)


@pytest.mark.parametrize(("text", "message"), [
    ("not base64!", "the archive key is not base64"),
    (base64.b64encode(b"short").decode(), "the archive key is 5 bytes (allowed: 32 random bytes, base64)"),
])
def test_a_malformed_key_is_refused_without_showing_it(text, message):
    with pytest.raises(ArchiveKeyError) as err:
        sealing.parse_key(text)
    assert message in str(err.value) and text not in str(err.value)
