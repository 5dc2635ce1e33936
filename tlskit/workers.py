"""Several server processes on one port: ``tlskit serve --workers N``.

The parent binds the port first, on placeholder sockets with ``SO_REUSEPORT`` that never
listen: ``--port 0`` then picks one port for every worker, and a restarted worker can always
bind it again. It then forks the workers. Each runs its own :class:`~tlskit.server.Server`
with ``reuse_port=True``, so the kernel spreads new connections over the workers' listening
sockets (no shared accept queue, no thundering herd). The parent accepts nothing: it forwards
every worker's log records to its own handlers (tagged with ``worker`` and ``pid``), starts a
new worker when one dies, and on SIGINT/SIGTERM stops them all and logs one ``stopped`` summary.

A worker is a fork of the parent taken before any event loop or thread exists, so it inherits
the ready :class:`ssl.SSLContext` and the certificate checks already done. Records travel as
pickled dicts over one pipe per worker (the ``logging.handlers.QueueHandler`` idea, without a
multiprocessing queue and its feeder thread).

Anchors: gunicorn ``arbiter.py`` (``Arbiter.spawn_worker``, ``reap_workers``), uvicorn
``supervisors/multiprocess.py``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import pickle
import selectors
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from tlskit.errors import TlskitError
from tlskit.server import Server, ServerStats

log = logging.getLogger(__name__)

RESTART_WINDOW = 5.0  # a worker that dies sooner than this after starting counts as a crash loop
MAX_QUICK_RESTARTS = 5  # give up after this many crash-loop restarts in a row
_FRAME = struct.Struct("!I")
_PIPE_SIZE = 1 << 20  # room for a burst of records while the parent renders


@dataclass
class _Worker:
    index: int
    pid: int
    fd: int  # read end of the worker's log pipe
    started: float
    buffer: bytearray = field(default_factory=bytearray)
    listening: bool = False
    stats: dict | None = None
    error: dict | None = None


class _PipeHandler(logging.Handler):
    """In a worker: each record as a pickled dict on the pipe to the parent."""

    def __init__(self, fd: int, index: int, level: int) -> None:
        super().__init__(level)
        self.fd = fd
        self.index = index
        self.orphaned = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            d = dict(record.__dict__)
            d["msg"] = record.getMessage()
            d["args"] = None
            if record.exc_info:
                d["exc_text"] = logging.Formatter().formatException(record.exc_info)
            d["exc_info"] = None
            d["worker"] = self.index
            d["worker_pid"] = os.getpid()
            try:
                data = pickle.dumps(d, pickle.HIGHEST_PROTOCOL)
            except Exception:  # an extra that does not pickle: send its text
                d = {k: (v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)) for k, v in d.items()}
                data = pickle.dumps(d, pickle.HIGHEST_PROTOCOL)
            view = memoryview(_FRAME.pack(len(data)) + data)
            while view:  # blocking pipe: a slow parent slows the worker, nothing is lost
                view = view[os.write(self.fd, view):]
        except BrokenPipeError:
            # The parent is gone (killed): nobody supervises or shows us; stop like on SIGTERM.
            if not self.orphaned:
                self.orphaned = True
                os.kill(os.getpid(), signal.SIGTERM)
        except Exception:
            self.handleError(record)


class WorkerPool:
    """Run ``count`` copies of a server on one port and supervise them.

    Example::

        pool = WorkerPool(lambda port: Server(ctx, "localhost", port, reuse_port=True), 2, port=8443)
        stats = pool.run()          # until SIGINT/SIGTERM or pool.stop()

    Args:
        create_server: builds a worker's :class:`Server` for a port; it must set ``reuse_port=True``.
        count: how many workers (at least 1).
        port: the port to share; 0 picks a free one.
        level: the lowest level the parent shows; workers drop records below it.
    """

    def __init__(self, create_server: Callable[[int], Server], count: int, *, port: int, level: int = logging.INFO) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self.create_server = create_server
        self.count = count
        self.requested_port = port
        self.level = level
        self.port: int | None = None
        self.restarts = 0
        self._workers: dict[int, _Worker] = {}  # by pid
        self._stopping = False
        self._stop_at = 0.0
        self._quick_restarts = 0
        self._logged_listening = False
        self._wake_r = self._wake_w = -1
        self._placeholders: list = []

    # -- the parent ------------------------------------------------------------------------
    def run(self) -> ServerStats:
        """Bind the port, fork the workers and supervise them until stopped.

        Returns:
            The workers' :class:`ServerStats`, added up.

        Raises:
            NetworkError: the port cannot be bound.
            TlskitError: a worker failed at start-up (its own error and exit code).
        """
        probe = self.create_server(self.requested_port)
        if not probe.reuse_port:
            raise ValueError("the workers' servers need reuse_port=True")
        self._placeholders = asyncio.run(probe.reserve_port())
        self.port = self._placeholders[0].getsockname()[1]
        self.grace = probe.shutdown_grace
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        old_handlers = {}
        old_wakeup = signal.set_wakeup_fd(self._wake_w)
        try:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
                old_handlers[sig] = signal.signal(sig, self._on_signal)
            for i in range(1, self.count + 1):
                self._spawn(i)
            return self._supervise()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, h in old_handlers.items():
                signal.signal(sig, h)
            for pid in list(self._workers):
                self._kill(pid, signal.SIGKILL)
            for w in self._workers.values():
                os.close(w.fd)
            for s in self._placeholders:
                s.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def stop(self) -> None:
        """Ask every worker to stop (close_notify to its clients), then return from :meth:`run`."""
        if not self._stopping:
            self._stopping = True
            self._stop_at = time.monotonic()
            for pid in list(self._workers):
                self._kill(pid, signal.SIGTERM)

    def _on_signal(self, signum, frame) -> None:
        # Runs between bytecodes of the supervisor loop; the wake-up fd ends its select().
        if signum in (signal.SIGINT, signal.SIGTERM):
            self.stop()

    def _kill(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _spawn(self, index: int) -> None:
        r, w = os.pipe()
        try:
            import fcntl

            fcntl.fcntl(r, 1031, _PIPE_SIZE)  # F_SETPIPE_SZ (Linux); the default 64 KiB is fine elsewhere
        except (OSError, ImportError):
            pass
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.close(r)
                code = self._worker_main(index, w)
            finally:
                # A forked child must not run the parent's cleanup (atexit, click, buffered stdout).
                os._exit(code)
        os.close(w)
        self._workers[pid] = _Worker(index, pid, r, time.monotonic())

    def _supervise(self) -> ServerStats:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        for w in self._workers.values():
            sel.register(w.fd, selectors.EVENT_READ, w)
        total = ServerStats()
        finished: list[_Worker] = []
        while self._workers:
            for key, _ in sel.select(timeout=0.5):
                if key.data is None:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                else:
                    self._read(key.data)
            for w in self._reap():
                self._drain(w)
                try:
                    sel.unregister(w.fd)
                except KeyError:
                    pass
                os.close(w.fd)
                finished.append(w)
                if w.error is not None and not w.listening:
                    self.stop()
                    raise self._error(w)
                if not self._stopping:
                    self._restart(w)
                    new = next(x for x in self._workers.values() if x.index == w.index)
                    sel.register(new.fd, selectors.EVENT_READ, new)
            if self._stopping and time.monotonic() - self._stop_at > self.grace + 3:
                for pid in list(self._workers):
                    self._kill(pid, signal.SIGKILL)
        sel.close()
        for w in finished:
            for f in fields(ServerStats):
                if w.stats and f.name != "active":
                    setattr(total, f.name, getattr(total, f.name) + int(w.stats.get(f.name, 0)))
        total.active = 0
        log.info(
            "stopped: %d workers, %d connections, %d handshakes ok, %d failed, %d refused, %d restarts",
            self.count,
            total.connections,
            total.handshakes_ok,
            total.handshakes_failed,
            total.refused,
            self.restarts,
            extra={"event": "stopped", "stats": total.to_dict(), "workers": self.count, "restarts": self.restarts},
        )
        return total

    def _reap(self) -> list[_Worker]:
        done = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            w = self._workers.pop(pid, None)
            if w is None:
                continue
            w.exit_status = status  # type: ignore[attr-defined]
            done.append(w)
        return done

    def _restart(self, w: _Worker) -> None:
        status = getattr(w, "exit_status", 0)
        if os.WIFSIGNALED(status):
            how = f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        else:
            how = f"exited with code {os.WEXITSTATUS(status)}"
        lived = time.monotonic() - w.started
        self._quick_restarts = self._quick_restarts + 1 if lived < RESTART_WINDOW else 0
        if self._quick_restarts > MAX_QUICK_RESTARTS:
            log.error(
                "worker %d %s %d times in a row within %g s of starting; stopping",
                w.index,
                how,
                self._quick_restarts,
                RESTART_WINDOW,
                extra={"event": "worker_crash_loop", "worker": w.index, "pid": w.pid},
            )
            self.stop()
            return
        self.restarts += 1
        self._spawn(w.index)
        new = next(x for x in self._workers.values() if x.index == w.index)
        log.warning(
            "worker %d (pid %d) %s after %.1f s; started pid %d in its place",
            w.index,
            w.pid,
            how,
            lived,
            new.pid,
            extra={"event": "worker_restarted", "worker": w.index, "pid": new.pid, "old_pid": w.pid, "reason": how},
        )

    def _read(self, w: _Worker) -> None:
        try:
            chunk = os.read(w.fd, 1 << 16)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                return
            raise
        if chunk:
            w.buffer += chunk
            self._dispatch(w)

    def _drain(self, w: _Worker) -> None:
        """What a finished worker still had in its pipe."""
        os.set_blocking(w.fd, False)
        while True:
            try:
                chunk = os.read(w.fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            w.buffer += chunk
        self._dispatch(w)

    def _dispatch(self, w: _Worker) -> None:
        buf = w.buffer
        while len(buf) >= _FRAME.size:
            (n,) = _FRAME.unpack_from(buf)
            if len(buf) < _FRAME.size + n:
                break
            d = pickle.loads(bytes(buf[_FRAME.size : _FRAME.size + n]))
            del buf[: _FRAME.size + n]
            self._forward(w, d)

    def _forward(self, w: _Worker, d: dict) -> None:
        event = d.get("event")
        if event == "worker_error":
            w.error = d
            return
        if event == "listening":
            w.listening = True
            if self._logged_listening:
                d["levelno"], d["levelname"] = logging.DEBUG, "DEBUG"  # said once, by the first worker
            else:
                self._logged_listening = True
                d["msg"] = f"{d['msg']}; {self.count} workers (pids {', '.join(str(p) for p in self.pids)})"
                d["workers"] = self.count
                d["pids"] = self.pids
        elif event == "stopped":
            w.stats = d.get("stats")
            d["levelno"], d["levelname"] = logging.DEBUG, "DEBUG"  # the parent logs the sum
        if event != "listening" or d["levelno"] < logging.INFO:
            d["msg"] = f"[worker {w.index}] {d['msg']}"
        record = logging.makeLogRecord(d)
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)

    @property
    def pids(self) -> list[int]:
        return sorted(w.pid for w in self._workers.values())

    def _error(self, w: _Worker) -> TlskitError:
        d = w.error or {}
        code = d.get("exit_code", 1)
        cls = next((c for c in _error_classes() if c.exit_code == code), TlskitError)
        return cls(d.get("msg") or f"worker {w.index} failed to start", hint=d.get("hint"))

    # -- a worker --------------------------------------------------------------------------
    def _worker_main(self, index: int, fd: int) -> int:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        _stop_with_parent()
        for s in self._placeholders:
            s.close()
        for w in self._workers.values():
            os.close(w.fd)  # the other workers' pipes, inherited from the parent
        handler = _PipeHandler(fd, index, self.level)
        root = logging.getLogger("tlskit")
        for h in list(root.handlers):
            root.removeHandler(h)
        root.addHandler(handler)
        root.setLevel(self.level)
        root.propagate = False
        try:
            server = self.create_server(self.port)
            asyncio.run(_serve_until_signalled(server))
            return 0
        except TlskitError as exc:
            log.error(exc.message, extra={"event": "worker_error", "exit_code": exc.exit_code, "hint": exc.hint})
            return exc.exit_code
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, then the worker ends
            log.error(f"internal error: {exc!r}", exc_info=True, extra={"event": "worker_error", "exit_code": 1})
            return 1


def _stop_with_parent() -> None:
    """Linux: SIGTERM this worker when the parent dies, even by SIGKILL (prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere the broken log pipe tells the worker, at its next event
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


async def _serve_until_signalled(server: Server) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.close)
    await server.serve()


def _error_classes() -> list[type[TlskitError]]:
    out, todo = [], [TlskitError]
    while todo:
        c = todo.pop()
        out.append(c)
        todo.extend(c.__subclasses__())
    return out[1:]


__all__ = ["WorkerPool"]
