"""The Dask layer: results in task order, a failing task named, bad schedulers refused clearly."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from nanoquote.sim.distributed import ClusterError, ShardError, cluster, run_tasks


@pytest.fixture(scope="module")
def client():
    with cluster(workers=2) as c:
        yield c


def test_results_come_back_in_task_order_whatever_finishes_first(client):
    # the long first task finishes last on two workers; its result still comes first
    tasks = [range(3_000_000), range(3), range(10), range(1000)]
    seen = []
    results = run_tasks(client, sum, tasks, describe=repr, progress=lambda done, total: seen.append((done, total)))
    assert results == [sum(t) for t in tasks]
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert run_tasks(client, sum, [], describe=repr) == []


def test_a_failing_task_is_a_shard_error_naming_it(client):
    tasks = ["1", "2", "x", "4"] * 5
    with pytest.raises(ShardError) as info:
        run_tasks(client, int, tasks, describe=lambda t: f"task {t!r}")
    assert str(info.value).startswith("task 'x': ValueError: invalid literal for int()")
    assert info.value.task == "x" and isinstance(info.value.error, ValueError)
    # the client is still usable afterwards
    assert run_tasks(client, int, ["5", "6"], describe=repr) == [5, 6]


def test_an_existing_scheduler_is_used_by_address(client):
    with cluster(client.scheduler.address) as remote:
        assert run_tasks(remote, int, ["7", "8"], describe=repr) == [7, 8]
        assert len(remote.scheduler_info()["workers"]) == 2


@pytest.mark.parametrize("address, reason", [
    ("foo", "malformed address (missing port number"),
    ("http://localhost:8786", "malformed address (unknown address scheme 'http'"),
])
def test_a_malformed_address_is_one_clear_error(address, reason):
    with pytest.raises(ClusterError, match=r"^scheduler '.*': " + reason.replace("(", r"\(")):
        with cluster(address):
            pass


def test_a_silent_address_times_out_quickly():
    with socket.socket() as s:  # a free port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(ClusterError, match=rf"scheduler 'tcp://127.0.0.1:{port}': no answer within 0.5 s"):
        with cluster(f"tcp://127.0.0.1:{port}", connect_timeout=0.5):
            pass
    assert time.monotonic() - start < 5


def test_a_server_that_is_not_dask_is_refused():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer_garbage():
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n" * 4)

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    try:
        with pytest.raises(ClusterError, match=rf"scheduler 'tcp://127.0.0.1:{port}': "):
            with cluster(f"tcp://127.0.0.1:{port}", connect_timeout=1):
                pass
    finally:
        server.close()
        thread.join(timeout=5)


def test_a_worker_address_is_not_a_scheduler(client):
    worker = next(iter(client.scheduler_info()["workers"]))
    with pytest.raises(ClusterError, match="answered as a Dask Worker, not a scheduler"):
        with cluster(worker):
            pass
