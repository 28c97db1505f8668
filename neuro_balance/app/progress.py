"""What a long command shows while it works: bars on a terminal, one line per stage otherwise, or nothing.

`Progress` picks its mode once: ``"bar"`` when both stdout and stderr are terminals (tqdm bars on stderr
that advance with simulated time or work done), ``"lines"`` when output goes to a file or a pipe (exactly
one plain line per stage, when it ends, with its time; never bar text in a log), ``"quiet"`` with
``-q/--quiet`` (nothing but errors and the last line).
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator

__all__ = ["Progress", "Stage"]

MODES = ("bar", "lines", "quiet")


class Stage:
    """One stage's progress: `update` to an absolute amount of work done out of ``total``."""

    def __init__(self, bar, total: float):
        self._bar = bar
        self.total = total
        self.note = ""

    def update(self, done: float) -> None:
        """Set the amount done (clipped to ``[0, total]``)."""
        if self._bar is not None:
            self._bar.n = min(max(float(done), 0.0), self.total)
            self._bar.refresh()

    def set_note(self, text: str) -> None:
        """A short note after the bar (e.g. what is compiling)."""
        self.note = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def brian_report(self, seconds: float, offset: float = 0.0) -> Callable:
        """A Brian2 ``report`` callable for a run of ``seconds`` that starts ``offset`` into this stage."""
        def report(elapsed, completed, start, duration):
            self.update(offset + float(completed) * seconds)
        return report


class Progress:
    """Stage lines and bars of one command.

    Parameters
    ----------
    mode : {"bar", "lines", "quiet"}, optional
        Default: ``"bar"`` on a terminal, else ``"lines"``.
    stream : file, optional
        Where lines go (default stdout); bars always go to stderr.
    """

    def __init__(self, mode: str | None = None, stream=None):
        if mode is None:
            mode = "bar" if sys.stdout.isatty() and sys.stderr.isatty() else "lines"
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.stream = stream if stream is not None else sys.stdout
        self._said: set[str] = set()

    def log(self, text: str) -> None:
        """One line for the reader (not in quiet mode; above the bars in bar mode)."""
        if self.mode == "bar":
            from tqdm.auto import tqdm

            tqdm.write(text, file=self.stream)
        elif self.mode == "lines":
            print(text, file=self.stream, flush=True)

    def once(self, key: str, text: str) -> None:
        """`log` ``text`` the first time ``key`` is seen (e.g. one compilation notice for several stages)."""
        if key not in self._said:
            self._said.add(key)
            self.log(text)

    @contextlib.contextmanager
    def stage(self, desc: str, total: float = 1.0, unit: str = "") -> Iterator[Stage]:
        """A stage: a bar (``"bar"``), one line when it has ended (``"lines"``) or nothing (``"quiet"``)."""
        started = time.perf_counter()
        bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, file=sys.stderr,
                       bar_format="{l_bar}{bar}| {elapsed}{postfix}")
        stage = Stage(bar, total)
        try:
            yield stage
        finally:
            if bar is not None:
                bar.close()
        if self.mode == "lines":
            self.log(f"[{desc}] done in {time.perf_counter() - started:.1f} s")
