"""The bulk layer's handling of the client it is given (no engine needed)."""

from __future__ import annotations

from opensearchpy import OpenSearch

from indexing.bulk import _without_client_retries


def test_bulk_requests_go_without_the_clients_own_retries_and_leave_it_alone():
    client = OpenSearch(hosts=["http://127.0.0.1:9"], max_retries=3)
    quiet = _without_client_retries(client)
    assert quiet.transport.max_retries == 0
    assert client.transport.max_retries == 3  # other threads may be using it
    assert quiet.transport.connection_pool is client.transport.connection_pool
    assert _without_client_retries(quiet) is quiet
