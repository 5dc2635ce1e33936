"""The servers under test: how to find (or install) each, start it on loopback with the
benchmark's certificate, wait until it accepts, and stop it by its PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_BIN = Path(sys.executable).parent
# Debian packages that provide each external peer (installed only when missing and root).
PACKAGES = {
    "openssl": ["openssl"],
    "gnutls-serv": ["gnutls-bin"],
    "nginx": ["nginx-light", "libnginx-mod-stream"],
    "gcc": ["gcc", "libc6-dev", "libssl-dev"],
    "hyperfine": ["hyperfine"],
}
NGINX_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
_apt_updated = False


def _which(binary: str) -> str | None:
    # nginx lives in /usr/sbin, which a non-login root shell may not have on PATH.
    return shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin:/sbin:/bin")


def apt_install(packages: list[str], log=print) -> str:
    """Install Debian ``packages`` when running as root; returns an error text, or "" on success."""
    global _apt_updated
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"install {' '.join(packages)}; not root, so not installing"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log(f"installing {' '.join(packages)} with apt-get ...")
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, timeout=300,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _apt_updated = True
    r = subprocess.run(["apt-get", "install", "-y", "-qq", *packages], env=env, timeout=600,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return "" if r.returncode == 0 else f"apt-get install {' '.join(packages)} failed: {r.stderr.strip()[-200:]}"


def find_or_install(binary: str, log=print) -> tuple[str | None, str]:
    """The path of ``binary``, installing its Debian packages when missing and running as root.

    Returns:
        (path or None, a reason when None).
    """
    path = _which(binary)
    if path:
        return path, ""
    packages = PACKAGES.get(binary)
    if not packages:
        return None, f"{binary} not found"
    err = apt_install(packages, log)
    path = _which(binary)
    return (path, "") if path else (None, f"{binary} not found ({err or 'not in the installed packages'})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"not listening on 127.0.0.1:{port} after {timeout:g} s")


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (from /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass
class Running:
    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path
    stdin_keepalive: bool = False

    def server_pids(self) -> list[int]:
        """The processes that hold connections: the workers under a master, else the process."""
        kids = children(self.proc.pid)
        return kids or [self.proc.pid]

    def rss_kib(self) -> int:
        return sum(rss_kib(p) for p in self.server_pids())

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the process and its workers so far."""
        return sum(cpu_seconds(p) for p in {self.proc.pid, *children(self.proc.pid)})

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass


@dataclass
class Server:
    """One server under test; ``argv(port)`` builds its command line."""

    name: str
    kind: str  # tlskit | python | external
    build: object  # callable(port, workdir) -> list[str]
    needs: str | None = None  # external binary
    modes: tuple[str, ...] = ("hs",)  # hs, hold, echo
    env: dict = field(default_factory=dict)
    stdin_pipe: bool = False
    stdout_null: bool = False  # a server that copies the traffic to stdout (gnutls-serv --echo)
    skip: str = ""
    quick: tuple[str, ...] | None = None  # the modes of a --quick run (None: all of ``modes``)

    def start(self, workdir: Path, log=print, nofile_soft: int | None = None) -> Running:
        port = free_port()
        argv = self.build(port, workdir)
        log_path = workdir / f"{self.name.replace(' ', '_').replace('/', '_')}.log"
        out = open(log_path, "ab")
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if self.stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if self.stdout_null else out,
            stderr=out,
            env={**os.environ, **self.env},
            cwd=workdir,
            start_new_session=True,
            preexec_fn=(lambda: _set_nofile_soft(nofile_soft)) if nofile_soft else None,
        )
        out.close()
        run = Running(self.name, proc, port, log_path, self.stdin_pipe)
        try:
            wait_listening(port, proc)
        except RuntimeError as exc:
            run.stop()
            tail = log_path.read_text(errors="replace")[-400:]
            raise RuntimeError(f"{self.name}: {exc}: {tail}") from exc
        return run


def _set_nofile_soft(soft: int) -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))


def nginx_conf(workdir: Path, port: int, cert: Path, key: Path, workers: int, *, stream_backend: int | None = None) -> Path:
    """A self-contained nginx.conf: loopback only, no access log, files under ``workdir``."""
    d = workdir / f"nginx-{port}"
    d.mkdir(parents=True, exist_ok=True)
    tls = f"ssl_certificate {cert}; ssl_certificate_key {key}; ssl_protocols TLSv1.2 TLSv1.3;"
    if stream_backend is None:
        body = f"""
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        {tls}
        location / {{ return 200 "ok\\n"; }}
    }}
}}"""
        head = ""
    else:
        head = f"load_module {NGINX_STREAM_MODULE};"
        body = f"""
stream {{
    server {{
        listen 127.0.0.1:{port} ssl;
        {tls}
        proxy_pass 127.0.0.1:{stream_backend};
    }}
}}"""
    conf = d / "nginx.conf"
    conf.write_text(
        f"""{head}
daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile 20000;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 16000; }}
{body}
"""
    )
    return conf


def catalogue(cert: Path, key: Path, home: Path, ca: Path, log=print) -> list[Server]:
    """Every server of the benchmark, in the order of the table; missing peers carry ``skip``."""
    tlskit = str(VENV_BIN / "tlskit")
    py = sys.executable
    tlskit_env = {"TLSKIT_HOME": str(home), "NO_COLOR": "1"}

    def tlskit_serve(*extra: str):
        return lambda port, wd: [tlskit, "-q", "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--cert", "localhost", *extra]

    try:
        import uvloop  # noqa: F401

        no_uvloop = ""
    except ImportError:
        no_uvloop = "uvloop is not installed (pip install uvloop)"
    servers = [
        # "tlskit" is asyncio's own loop, whatever is installed; the uvloop rows say so.
        Server("tlskit", "tlskit", tlskit_serve("--loop", "asyncio"), modes=("hs", "hold", "echo"), env=tlskit_env),
        Server("tlskit --workers 2", "tlskit", tlskit_serve("--workers", "2", "--loop", "asyncio"), modes=("hs",),
               env=tlskit_env),
        Server("tlskit --loop uvloop", "tlskit", tlskit_serve("--loop", "uvloop"), modes=("hs", "hold", "echo"),
               env=tlskit_env, skip=no_uvloop, quick=("hs",)),
        Server("tlskit -w2 uvloop", "tlskit", tlskit_serve("--workers", "2", "--loop", "uvloop"), modes=("hs",),
               env=tlskit_env, skip=no_uvloop, quick=()),
        # The default log (no -q), to a file: at most 50 per-connection lines a second, then a count.
        Server("tlskit (INFO log)", "tlskit",
               lambda port, wd: [tlskit, "serve", "--host", "127.0.0.1", "--port", str(port), "--cert", "localhost",
                                 "--loop", "asyncio"],
               modes=("hs",), env=tlskit_env, quick=()),
        Server("naive asyncio", "python", lambda port, wd: [py, str(BENCH / "peers" / "naive_echo.py"), str(cert), str(key), str(port)],
               modes=("hs", "hold", "echo")),
        Server("bare MemoryBIO", "python", lambda port, wd: [py, str(BENCH / "peers" / "bare_echo.py"), str(cert), str(key), str(port)],
               modes=("hs", "hold", "echo"), quick=("hs", "echo")),
        # The floors of --workers 2: the same 40-line design in two SO_REUSEPORT processes, and the
        # least Python per handshake (OpenSSL on the socket, no transport, no features), also two.
        Server("bare MemoryBIO x2", "python",
               lambda port, wd: [py, str(BENCH / "peers" / "bare_echo.py"), str(cert), str(key), str(port), "--processes", "2"],
               modes=("hs",), quick=()),
        Server("lean socket-BIO x2", "python",
               lambda port, wd: [py, str(BENCH / "peers" / "lean_echo.py"), str(cert), str(key), str(port), "--processes", "2"],
               modes=("hs",)),
    ]
    openssl, why = find_or_install("openssl", log)
    servers.append(Server(
        "openssl s_server", "external",
        # Not -quiet/-www: the plain mode, stdin an open pipe so that it never sees EOF.
        lambda port, wd: [openssl, "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert), "-key", str(key),
                          "-naccept", "100000000"],
        needs="openssl", stdin_pipe=True, skip=why))
    gnutls, why = find_or_install("gnutls-serv", log)
    servers.append(Server(
        "gnutls-serv", "external",
        # gnutls-serv has no bind-address option: it listens on every interface; traffic is loopback only.
        lambda port, wd: [gnutls, "--port", str(port), "--x509certfile", str(cert), "--x509keyfile", str(key), "--echo", "-q"],
        needs="gnutls-serv", modes=("hs", "echo"), stdout_null=True, skip=why))
    nginx, why = find_or_install("nginx", log)
    for n in (1, 2):
        servers.append(Server(
            f"nginx {n}w", "external",
            (lambda n: lambda port, wd: [nginx, "-c", str(nginx_conf(wd, port, cert, key, n)), "-e", "stderr"])(n),
            needs="nginx", modes=("hs", "hold") if n == 1 else ("hs",), skip=why))
    if nginx and not NGINX_STREAM_MODULE.exists():
        stream_skip = "nginx without the stream module (libnginx-mod-stream)"
    else:
        stream_skip = why
    servers.append(Server("nginx stream", "external", None, needs="nginx", modes=("echo",), skip=stream_skip))
    return servers
