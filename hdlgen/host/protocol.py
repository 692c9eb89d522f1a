"""The frame protocol, host side (board side: ``hdlgen.shell.link``; the format: ``docs/board.md``)."""

from __future__ import annotations

import binascii

from ..shell.core import LinkFormat
from ..shell.link import CRC_INIT, REPLY_SYNC, REQUEST_SYNC, payload_bytes

__all__ = ["request", "reply_length", "request_length", "link_frames_per_second", "parse_reply", "reply", "REQUEST_SYNC", "REPLY_SYNC"]


def _crc(data: bytes) -> bytes:
    return binascii.crc_hqx(data, CRC_INIT).to_bytes(2, "big")


def _pack(beats: list[int], bits: int) -> bytes:
    per = payload_bytes(bits)
    return b"".join(int(beat).to_bytes(per, "little") for beat in beats)


def _unpack(data: bytes, bits: int) -> list[int]:
    per = payload_bytes(bits)
    return [int.from_bytes(data[k:k + per], "little") for k in range(0, len(data), per)]


def request(link: LinkFormat, seq: int, beats: list[int]) -> bytes:
    """The bytes that ask the board to run one frame of input beats."""
    if len(beats) != link.in_beats:
        raise ValueError(f"a frame is {link.in_beats} input beats, not {len(beats)}")
    body = bytes([seq & 0xFF]) + _pack(beats, link.in_bits)
    return bytes([REQUEST_SYNC]) + body + _crc(body)


def reply(link: LinkFormat, seq: int, beats: list[int]) -> bytes:
    """The bytes the board answers with (what the shell sends; used by tests)."""
    body = bytes([seq & 0xFF]) + _pack(beats, link.out_bits)
    return bytes([REPLY_SYNC]) + body + _crc(body)


def reply_length(link: LinkFormat) -> int:
    return 4 + link.out_beats * payload_bytes(link.out_bits)


def request_length(link: LinkFormat) -> int:
    return 4 + link.in_beats * payload_bytes(link.in_bits)


def link_frames_per_second(link: LinkFormat, baud: int) -> float:
    """The most frames a second a UART at ``baud`` carries, one request then its reply (10 bits a byte)."""
    return baud / 10 / (request_length(link) + reply_length(link))


def parse_reply(link: LinkFormat, data: bytes) -> tuple[int, list[int]] | None:
    """(sequence number, output beats) of a whole reply, or None when its sync byte or CRC is wrong."""
    if len(data) != reply_length(link) or data[0] != REPLY_SYNC or _crc(data[1:-2]) != data[-2:]:
        return None
    return data[1], _unpack(data[2:-2], link.out_bits)
