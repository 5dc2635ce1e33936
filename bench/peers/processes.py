"""Run a bench peer in N processes on one port, the way ``tlskit serve --workers N`` does.

Call :func:`fork` before binding: each process then binds its own listening socket with
SO_REUSEPORT (the kernel spreads the connections over them). The first process is the parent: on SIGTERM or SIGINT it stops
the others and exits with status 0, so the harness stops the whole peer by the parent's PID.
"""

import os
import signal
import sys


def fork(n: int) -> None:
    """Return in each of ``n`` processes (this one and n - 1 children)."""
    kids = []
    for _ in range(n - 1):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            return
        kids.append(pid)

    def stop(signum, frame):
        for pid in kids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in kids:
            os.waitpid(pid, 0)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def count(argv: list[str]) -> int:
    """The ``--processes N`` option (removed from ``argv``); 1 when absent."""
    if "--processes" in argv:
        i = argv.index("--processes")
        n = int(argv[i + 1])
        del argv[i : i + 2]
        return n
    return 1
