"""One version everywhere: setup.py, package.xml and the Debian changelog agree."""

from __future__ import annotations

from pathlib import Path
import re
import xml.etree.ElementTree as ET

PACKAGE = Path(__file__).resolve().parents[1]
REPO = PACKAGE.parents[2]


def test_setup_py_package_xml_and_debian_changelog_have_one_version() -> None:
    setup = re.search(r"version='([^']+)'", (PACKAGE / 'setup.py').read_text()).group(1)
    package_xml = ET.parse(PACKAGE / 'package.xml').getroot().findtext('version')
    changelog = (REPO / 'packaging' / 'debian' / 'changelog').read_text().splitlines()[0]
    debian = re.match(r'kilo7 \(([^)]+)\)', changelog).group(1)
    assert setup == package_xml == debian
