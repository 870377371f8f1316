"""Review 2: RedisServer moving off a taken port."""

from __future__ import annotations

import socket
import threading

from argo_perf.testing import RedisServer


def test_a_server_whose_chosen_port_is_held_by_a_banner_service_starts_on_another() -> None:
    # Another service (one that greets first, as SSH does) holds the chosen port:
    # the readiness probe reads its banner, redis-py raises InvalidResponse (not a
    # ConnectionError), and start() fails instead of moving to another port.
    server = RedisServer()
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", server.port))
    holder.listen()
    taken = server.port
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def greet() -> None:
        holder.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = holder.accept()
            except OSError:
                continue
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            accepted.append(conn)

    thread = threading.Thread(target=greet, daemon=True)
    thread.start()
    try:
        with server:
            assert server.port != taken
            with server.client() as client:
                assert client.ping()
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        holder.close()
