"""A throwaway CA and server certificate (openssl) for the TLS listener tests."""

from __future__ import annotations

from pathlib import Path
import subprocess


def make_certificates(directory: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1."""
    files = {name: directory / name for name in
             ('ca.key', 'ca.crt', 'server.key', 'server.csr', 'server.crt', 'san.ext')}
    files['san.ext'].write_text('subjectAltName=DNS:localhost,IP:127.0.0.1\n')
    key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

    def openssl(*args: str) -> None:
        subprocess.run(['openssl', *args], check=True, capture_output=True)
    openssl('req', '-x509', *key, '-keyout', str(files['ca.key']), '-out', str(files['ca.crt']),
            '-days', '2', '-subj', '/CN=kilo7-test-ca')
    openssl('req', *key, '-keyout', str(files['server.key']), '-out', str(files['server.csr']),
            '-subj', '/CN=localhost')
    openssl('x509', '-req', '-in', str(files['server.csr']), '-CA', str(files['ca.crt']),
            '-CAkey', str(files['ca.key']), '-CAcreateserial', '-out', str(files['server.crt']),
            '-days', '2', '-extfile', str(files['san.ext']))
    return files
