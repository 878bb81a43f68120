"""Is an audio file cut short? libsndfile decodes what is there of a truncated WAV, Ogg or MP3
without a word, so the container is checked against its own framing before decoding:

* WAV: the RIFF header declares the file's length.
* Ogg (Vorbis, Opus, FLAC in Ogg): the file must end exactly at the end of a page, and that
  page must carry the end-of-stream flag.
* MP3: MPEG audio frames declare their length; walking them from the first one must land
  exactly on the end of the file (ID3v1 / APE tags at the end are allowed).

Each check returns a reason when the file is truncated, ``None`` when it is whole or when the
format gives no way to tell (free-format MP3, junk between frames).
"""

from __future__ import annotations

import io
from typing import Any

__all__ = ["truncation"]

_OGG_TAIL = 65_307 + 1024  # a page is at most 65,307 bytes
_MP3_WALK_LIMIT = 64 * 1024 * 1024  # longer MP3s are not walked (they are cropped anyway)

_OGG_EOS = 0x04
_MP3_KBPS = {
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def truncation(fh: Any) -> str | None:
    """Why the audio file behind the seekable binary ``fh`` is truncated, or ``None``; leaves
    ``fh`` at its start."""
    head = fh.read(12)
    size = fh.seek(0, io.SEEK_END)
    try:
        if len(head) == 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            return _wav(head, size)
        if head[:4] == b"OggS":
            start = max(0, size - _OGG_TAIL)
            fh.seek(start)
            return _ogg(fh.read())
        if (head[:3] == b"ID3" or _mp3_frame(head, 0) is not None) and size <= _MP3_WALK_LIMIT:
            fh.seek(0)
            return _mp3(fh.read())
        return None
    finally:
        fh.seek(0)


def _wav(head: bytes, size: int) -> str | None:
    # 0 / 0xFFFFFFFF are placeholders written by streaming encoders: nothing to compare.
    if head[4:8] in (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff"):
        return None
    declared = int.from_bytes(head[4:8], "little") + 8
    if declared > size:
        return f"the WAV header declares {declared:,} bytes, only {size:,} are present"
    return None


def _ogg(data: bytes) -> str | None:
    size = len(data)
    pos = data.rfind(b"OggS")
    while pos >= 0:
        if pos + 27 <= size and data[pos + 4] == 0:
            nsegs = data[pos + 26]
            if pos + 27 + nsegs <= size:
                end = pos + 27 + nsegs + sum(data[pos + 27 : pos + 27 + nsegs])
                if end == size:
                    if data[pos + 5] & _OGG_EOS:
                        return None
                    return "the Ogg stream stops before its last page (no end-of-stream flag)"
        pos = data.rfind(b"OggS", 0, pos)
    return "the file ends inside an Ogg page"


def _mp3_frame(data: bytes, pos: int) -> int | None:
    """Length of the MPEG audio frame whose header starts at ``pos`` (None: no header there,
    0: a free-format frame, whose length the header does not give)."""
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    version, layer = (data[pos + 1] >> 3) & 3, 4 - ((data[pos + 1] >> 1) & 3)
    index, rate, pad = data[pos + 2] >> 4, (data[pos + 2] >> 2) & 3, (data[pos + 2] >> 1) & 1
    if version == 1 or layer == 4 or index == 15 or rate == 3:
        return None
    if index == 0:
        return 0
    table = (1, layer) if version == 3 else (2, 1 if layer == 1 else 2)
    bitrate = _MP3_KBPS[table][index] * 1000
    sample_rate = _MP3_RATES[version][rate]
    if layer == 1:
        return (12 * bitrate // sample_rate + pad) * 4
    per_frame = 72 if layer == 3 and version != 3 else 144
    return per_frame * bitrate // sample_rate + pad


def _mp3(data: bytes) -> str | None:
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10]))
        pos = 10 + size + (10 if data[5] & 0x10 else 0)
    end = len(data)
    if end >= 128 and data[end - 128 : end - 125] == b"TAG":
        end -= 128
    if end >= 32 and data[end - 32 : end - 24] == b"APETAGEX":
        tag = int.from_bytes(data[end - 20 : end - 16], "little")
        end -= tag + (32 if data[end - 9] & 0x80 else 0)
    start = data.find(b"\xff", pos)
    while start >= 0 and _mp3_frame(data, start) is None and start < pos + 65536:
        start = data.find(b"\xff", start + 1)
    if start < 0 or _mp3_frame(data, start) is None:
        return None  # no frame found where one should be: leave it to the decoder
    declared = _xing_bytes(data, start)
    if declared is not None and declared > end - start:
        return (f"the MP3's Xing/Info header declares {declared:,} bytes of audio frames, only "
                f"{end - start:,} are present")
    pos, frames = start, 0
    while pos < end:
        length = _mp3_frame(data, pos)
        if not length:
            if end - pos < 4 and data[pos] == 0xFF:
                return f"the file ends inside an MPEG frame header (after {frames} frames)"
            return None  # free format or junk: no way to tell
        frames += 1
        pos += length
    if pos > end:
        return (f"the last MPEG frame is cut: frame {frames} needs {pos - end:,} more bytes "
                "than the file has")
    return None


def _xing_bytes(data: bytes, start: int) -> int | None:
    """The stream size a VBR (Xing / Info) header in the first frame declares, if any."""
    first = data[start : start + 64]
    at = max(first.find(b"Xing"), first.find(b"Info"))
    if at < 0:
        return None
    at += start
    flags = int.from_bytes(data[at + 4 : at + 8], "big")
    if not flags & 2:
        return None
    offset = at + 8 + (4 if flags & 1 else 0)
    return int.from_bytes(data[offset : offset + 4], "big") or None
