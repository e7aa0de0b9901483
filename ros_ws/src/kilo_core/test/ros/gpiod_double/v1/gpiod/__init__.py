"""A double of python3-libgpiod 1.6's ``gpiod`` module (the calls the relay makes), over
chips as files (gpiod_double/line_files.py)."""

from __future__ import annotations

from line_files import ChipFiles

LINE_REQ_DIR_OUT = 3


class Line:
    def __init__(self, chip: ChipFiles, offset: int) -> None:
        self._chip, self._offset = chip, offset

    def request(self, consumer: str, type: int, flags: int = 0, default_val: int = 0) -> None:
        assert type == LINE_REQ_DIR_OUT and consumer
        self._chip.request(self._offset, default_val)

    def set_value(self, value: int) -> None:
        self._chip.set(self._offset, value)

    def get_value(self) -> int:
        return self._chip.get(self._offset)

    def release(self) -> None:
        self._chip.release(self._offset)


class Chip:
    OPEN_BY_PATH = 3

    def __init__(self, path: str, how: int) -> None:
        assert how == Chip.OPEN_BY_PATH, 'opened by lookup: a path outside /dev would fail'
        self._files = ChipFiles(path)

    def label(self) -> str:
        return self._files.label

    def get_line(self, offset: int) -> Line:
        return Line(self._files, offset)

    def close(self) -> None:
        """Nothing held open."""
