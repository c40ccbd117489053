#!/usr/bin/env python3
"""The floor of a handoff: the time to pass N connection fds from one process to another with
no JavaScript and no per-connection state at all -- SCM_RIGHTS over a SOCK_SEQPACKET
socketpair in batches of 253 (as apprun's bundle does), the receiver's fd table grown once
beforehand (as apprun's reader does). The fds are N duplicates of one connected TCP socket
(the kernel's per-fd work for a TCP socket does not depend on which connection it is).

    python3 scripts/bench/fd_floor.py 10 1000 10000 100000   # "N ms" per count, median of 5
    (a count above the open-files limit, which only a privileged process can raise, says n/a)
"""
import os
import resource
import socket
import statistics
import sys
import time

SCM_MAX_FD = 253


def raise_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, need)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def once(n, conn):
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        parent.close()
        high = os.dup2(0, min(n + 1024, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1))
        os.close(high)
        os.write(ready_w, b"r")
        got = 0
        while got < n:
            _, fds, _, _ = socket.recv_fds(child, 16, SCM_MAX_FD)
            got += len(fds)
            for fd in fds:
                pass  # received: installed in our table, as the new process holds them
        child.send(b"done")
        os._exit(0)
    child.close()
    os.read(ready_r, 1)
    dups = [os.dup(conn.fileno()) for _ in range(n)]
    t0 = time.perf_counter()
    for i in range(0, n, SCM_MAX_FD):
        socket.send_fds(parent, [b"b"], dups[i:i + SCM_MAX_FD])
    parent.recv(16)
    ms = (time.perf_counter() - t0) * 1000
    os.waitpid(pid, 0)
    for fd in dups:
        os.close(fd)
    parent.close()
    os.close(ready_r)
    os.close(ready_w)
    return ms


def main():
    counts = [int(a) for a in sys.argv[1:]] or [10, 1000, 10000, 100000]
    raise_limit(2 * max(counts) + 2048)
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    conn, _ = listener.accept()
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    for n in counts:
        if n + 256 > limit:
            print(f"{n} n/a (RLIMIT_NOFILE is {limit})", flush=True)
            continue
        runs = [once(n, conn) for _ in range(5)]
        print(f"{n} {statistics.median(runs):.2f}", flush=True)
    client.close()
    conn.close()
    listener.close()


if __name__ == "__main__":
    main()
