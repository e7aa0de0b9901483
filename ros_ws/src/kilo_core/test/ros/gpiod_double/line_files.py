"""The state behind the libgpiod doubles (gpiod_double/v1 and v2): GPIO chips as files, so
the relay node's process and the test share them. A chip is ``<dev>/gpiochipN`` (its
label inside); the level a line holds is ``gpiochipN.lines/<offset>``, written by the
double when the node sets it. Faults, made by the test: a ``gpiochipN.busy/<offset>``
file (another process holds the line: EBUSY), a directory where a level file was (a
write error), a ``gpiochipN.stuck/<offset>`` file (the line reads that level whatever
was written)."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class ChipFiles:
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.label = self.path.read_text(encoding='ascii').strip()
        self.lines = self.path.with_name(self.path.name + '.lines')
        self.held: set[int] = set()

    def request(self, offset: int, level: int) -> None:
        if self.path.with_name(self.path.name + '.busy').joinpath(str(offset)).exists():
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        self.held.add(offset)
        self.set(offset, level)

    def set(self, offset: int, level: int) -> None:
        if offset not in self.held:
            raise ValueError(f'line {offset} not requested')
        self.lines.mkdir(exist_ok=True)
        (self.lines / str(offset)).write_text(f'{level}\n', encoding='ascii')

    def get(self, offset: int) -> int:
        stuck = self.path.with_name(self.path.name + '.stuck') / str(offset)
        source = stuck if stuck.exists() else self.lines / str(offset)
        return int(source.read_text(encoding='ascii'))

    def release(self, offset: int) -> None:
        self.held.discard(offset)


def make_chip(dev: Path, number: int, label: str) -> Path:
    """A chip as the double sees it; returns its path."""
    dev.mkdir(parents=True, exist_ok=True)
    path = dev / f'gpiochip{number}'
    path.write_text(f'{label}\n', encoding='ascii')
    return path


def level(chip: Path, offset: int) -> int | None:
    """The level the line holds, or None if nothing was ever written to it."""
    held = chip.with_name(chip.name + '.lines') / str(offset)
    return int(held.read_text(encoding='ascii')) if held.exists() else None
