"""Fixtures of the transport tests: a throw-away CA and clients of the servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers import TLS, ScriptServer

from secretsboot.transport import HttpClient


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLS:
    return TLS(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def client_for(tls: TLS) -> Iterator[Callable[..., HttpClient]]:
    """``client_for(server, **options)``: an HttpClient of ``server`` trusting the CA
    (plain http allowed for a plain server), closed after the test."""
    made: list[HttpClient] = []

    def make(server: ScriptServer, **kw: Any) -> HttpClient:
        env = {"SECRETSBOOT_INSECURE_ALLOW_HTTP": "1"} if server.tls is None else {}
        client = HttpClient(server.url, ca_file=tls.ca_file, what="test server", env=env, **kw)
        made.append(client)
        return client

    yield make
    for c in made:
        c.close()
