"""Progress on stderr: one line per step with its duration (``Progress``), and a bar for steps with
parts to count, frames or tool phases (``ProgressBar``). A bar redraws in place on a terminal and
prints a line at each quarter elsewhere (logs, CI)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

__all__ = ["Progress", "ProgressBar"]


class Progress:
    """One line per step with its duration, on stderr (quiet when ``enabled`` is false)."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.step, self.enabled = total, 0, enabled

    @contextmanager
    def __call__(self, what: str):
        self.step += 1
        start = time.monotonic()
        if self.enabled:
            print(f"[{self.step}/{self.total}] {what} ...", end="", file=sys.stderr, flush=True)
        try:
            yield
        except BaseException:
            if self.enabled:
                print(" failed", file=sys.stderr, flush=True)
            raise
        if self.enabled:
            print(f" {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)


class ProgressBar:
    WIDTH = 30

    def __init__(self, total: int, label: str, *, enabled: bool = True, stream=None):
        self.total, self.label, self.enabled = max(1, total), label, enabled
        self.stream = stream or sys.stderr
        self.tty = self.enabled and getattr(self.stream, "isatty", lambda: False)()
        self.done, self._quarter, self._started = 0, -1, False

    def update(self, done: int, note: str = "") -> None:
        self.done = min(done, self.total)
        if not self.enabled:
            return
        if not self._started:
            print(file=self.stream, flush=True)          # below the step's line
            self._started = True
        share = self.done / self.total
        filled = int(share * self.WIDTH)
        line = f"  {self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total}"
        if note:
            line += f" {note}"
        if self.tty:
            print(f"\r{line}\x1b[K", end="", file=self.stream, flush=True)
        elif int(share * 4) > self._quarter:
            self._quarter = int(share * 4)
            print(line, file=self.stream, flush=True)

    @property
    def started(self) -> bool:
        return self._started

    def close(self, note: str = "") -> None:
        """End the bar's line (an error printed next starts on a line of its own), and say ``note``."""
        if self.enabled and self.tty and self._started:
            print(file=self.stream, flush=True)
        if self.enabled and note:
            print(f"  {self.label}: {note}", file=self.stream, flush=True)
