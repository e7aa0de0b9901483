"""A double of libgpiod 2.x's ``gpiod`` module (the calls the relay makes), over chips as
files (gpiod_double/line_files.py)."""

from __future__ import annotations

from dataclasses import dataclass

from line_files import ChipFiles

from gpiod.line import Direction, Value


@dataclass
class LineSettings:
    direction: Direction = Direction.AS_IS
    output_value: Value = Value.INACTIVE


@dataclass
class ChipInfo:
    name: str
    label: str


class LineRequest:
    def __init__(self, chip: ChipFiles, offsets: list[int]) -> None:
        self._chip, self._offsets = chip, offsets

    def set_value(self, line: int, value: Value) -> None:
        self._chip.set(line, value.value)

    def get_value(self, line: int) -> Value:
        return Value(self._chip.get(line))

    def release(self) -> None:
        for offset in self._offsets:
            self._chip.release(offset)


class Chip:
    def __init__(self, path: str) -> None:
        self._files = ChipFiles(path)

    def get_info(self) -> ChipInfo:
        return ChipInfo(name=self._files.path.name, label=self._files.label)

    def request_lines(self, config: dict[int, LineSettings], consumer: str) -> LineRequest:
        assert consumer
        for offset, settings in config.items():
            assert settings.direction is Direction.OUTPUT
            self._files.request(offset, settings.output_value.value)
        return LineRequest(self._files, list(config))

    def close(self) -> None:
        """Nothing held open."""


def request_lines(*_args: object, **_kwargs: object) -> LineRequest:
    raise NotImplementedError('the relay requests lines through its Chip')
