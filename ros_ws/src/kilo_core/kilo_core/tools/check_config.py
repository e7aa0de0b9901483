"""Check a KILO.7 config override file as the nodes load it (merged onto the package
default): exit 0, or print what is wrong, naming the file and the key, and exit 2.
The role checks the hardware config it writes with it before putting it in place.

    python3 -m kilo_core.tools.check_config FILE
"""

from __future__ import annotations

import sys

from kilo_core.core.config import ConfigError, load


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    try:
        load(argv[0])
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
