"""Hostile uploads for the end-to-end tests of the served model (test_serving_limits.py) and
the web app (test_app.py): bodies announced over a server's limit, bodies sent without a
length (chunked), bursts of them, and the servers' memory meanwhile."""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


def group_rss_mb(group: int) -> float:
    """The resident memory of every process in the process group (a server and its workers)."""
    total_kb = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != group:
                continue
            with open(f"/proc/{entry}/status") as status:
                total_kb += next(
                    int(line.split()[1]) for line in status if line.startswith("VmRSS")
                )
        except (OSError, StopIteration):
            continue  # gone meanwhile, or a kernel thread
    return total_kb / 1024


def answer_to_headers_alone(port: int, path: str, length: int, content_type: str) -> tuple:
    """Send only the headers of a request announcing `length` bytes and read what the server
    answers without a byte of the body: (status, body text), or (None, why) if it waited."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head.encode())
        received = b""
        try:
            while b"\r\n\r\n" not in received or not _whole(received):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            return None, f"no answer within 30 s to the headers alone: {received[:200]!r}"
    status_line, _, rest = received.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode(errors="replace")


def _whole(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def chunked_post(
    port: int, path: str, parts: Callable[[], object], content_type: str
) -> tuple[int | None, str]:
    """POST the bytes `parts()` yields, without a Content-Length (Transfer-Encoding: chunked):
    (status, body text), or (None, the error) if the connection failed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        headers = {"Content-Type": content_type, "Transfer-Encoding": "chunked"}
        connection.request("POST", path, parts(), headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as error:
        return None, repr(error)
    finally:
        connection.close()


@dataclass
class Burst:
    answers: list  # (status, body) of each upload of the burst
    other: tuple  # (status, seconds) of the ordinary request made meanwhile
    base_mb: float  # the server's resident memory before
    peak_mb: float  # and its peak during the burst


def burst(
    group: int,
    uploads: int,
    upload: Callable[[], tuple],
    other: Callable[[], int],
    settle: float = 0.3,
) -> Burst:
    """`uploads` concurrent `upload()` calls; `settle` seconds in, one `other()` request (its
    status); the server's memory sampled all along."""
    answers: list = [None] * uploads

    def run(index: int) -> None:
        answers[index] = upload()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(uploads)]
    base = peak = group_rss_mb(group)
    started = time.monotonic()
    for thread in threads:
        thread.start()
    answered = None
    while any(thread.is_alive() for thread in threads) or answered is None:
        peak = max(peak, group_rss_mb(group))
        if answered is None and time.monotonic() - started > settle:
            asked = time.monotonic()
            answered = (other(), time.monotonic() - asked)
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    return Burst(answers, answered, base, peak)
