"""Running frames on a board over a serial port (pyserial), or on the simulated board: the same code.

Stop and wait: one request, then its reply. Bytes that are not a reply with a right CRC and the
request's sequence number are skipped; when no such reply comes within the timeout, the request is
sent again, up to ``retries`` times. The link never waits forever.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from ..errors import HdlgenError
from ..shell.core import LinkFormat
from .protocol import REPLY_SYNC, parse_reply, reply_length, request

__all__ = ["BoardLink", "LinkStats"]


@dataclass
class LinkStats:
    frames: int = 0
    retries: int = 0
    seconds: float = 0.0
    reasons: dict = field(default_factory=dict)     # why requests were sent again: timeout, crc, sequence

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class BoardLink:
    """Frames to and from a board through ``port``, a pyserial ``Serial`` (or anything with its
    ``write``, ``read``, ``reset_input_buffer`` and ``timeout``)."""

    def __init__(self, port, link: LinkFormat, *, timeout: float, retries: int = 8):
        self.port, self.link, self.timeout, self.retries = port, link, timeout, retries
        self.stats = LinkStats()
        self._seq = secrets.randbelow(256)     # a reply left over from an earlier session will not match

    def _read_reply(self, seq: int) -> tuple[list[int] | None, str]:
        """The beats of the reply to ``seq``, or None and why not, by the deadline. Bytes before a
        sync byte, replies with a wrong CRC and replies to other requests are skipped."""
        deadline = time.monotonic() + self.timeout
        length = reply_length(self.link)
        buffer = bytearray()
        why = "timeout"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, why
            self.port.timeout = left
            if not buffer:
                byte = self.port.read(1)
                if byte and byte[0] == REPLY_SYNC:
                    buffer += byte
                continue
            buffer += self.port.read(length - len(buffer))
            if len(buffer) < length:
                continue
            parsed = parse_reply(self.link, bytes(buffer))
            if parsed is None:
                # not a whole reply: look for the next sync byte inside what was read
                why = "crc"
                rest = buffer[1:]
                start = rest.find(bytes([REPLY_SYNC]))
                buffer = bytearray(rest[start:]) if start >= 0 else bytearray()
                continue
            got, beats = parsed
            if got == seq:
                return beats, ""
            why = "sequence"
            buffer = bytearray()                 # a late reply to an earlier request: skip it

    def run_frame(self, beats: list[int]) -> list[int]:
        """One frame's input beats in, its output beats back."""
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFF
        data = request(self.link, seq, beats)
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                self.port.reset_input_buffer()
            self.port.write(data)
            out, why = self._read_reply(seq)
            if out is not None:
                self.stats.frames += 1
                return out
            self.stats.reasons[why] = self.stats.reasons.get(why, 0) + 1
        raise HdlgenError(f"no valid reply from the board to frame {self.stats.frames} after {self.retries + 1} tries "
                          f"(each waited {self.timeout:g} s); check the port, the baud rate and that the board runs "
                          f"this build's bitstream")

    def run(self, frames: list[list[int]], progress=None) -> list[list[int]]:
        """Every frame's output beats; ``progress(done, total)`` is called after each frame."""
        start = time.monotonic()
        outputs = []
        for k, beats in enumerate(frames):
            outputs.append(self.run_frame(beats))
            if progress is not None:
                progress(k + 1, len(frames))
        self.stats.seconds += time.monotonic() - start
        return outputs
