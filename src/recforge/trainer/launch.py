"""Starting the processes of ``recforge run --nproc N`` / ``recforge evaluate --nproc N``, and ending them.

``launch`` runs a command in N processes through torch.distributed's elastic launcher (the machinery behind
``torchrun``), with a static rendezvous at ``ip:port`` (several machines: the same command on each, with its
``offset``). A rank that fails writes its error into a folder the launcher gave it (``RECFORGE_RANK_ERRORS``);
the ranks it leaves behind stop with ``PEER_FAILED``; the launcher prints the error of the rank that failed first,
once: one line, and the rank's traceback too with ``--debug``. Ranks started by ``torchrun`` instead print their
own errors.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from recforge.errors import ConfigError
from recforge.trainer import distributed

PEER_FAILED = 3  # exit status of a rank stopped because another rank failed
PEER_GRACE_S = 2.0
ERRORS_ENV = "RECFORGE_RANK_ERRORS"


def launch(
    entry: Callable[[list[str]], None],
    argv: Sequence[str],
    nproc: int,
    total: int | None,
    ip: str,
    port: int,
    offset: int,
    debug: bool = False,
) -> int:
    """Run ``entry(argv)`` (a module-level function: each process imports it) in ``nproc`` processes here
    (``total`` in all, this machine's first rank ``offset``); returns the exit status. A failing process stops the
    others and its error is printed once (its traceback too with ``debug``)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    total = total or nproc
    check_processes(nproc, total, offset)
    if offset == 0:
        check_port_free(ip, port)
    config = LaunchConfig(
        min_nodes=total // nproc,
        max_nodes=total // nproc,
        nproc_per_node=nproc,
        run_id="recforge",
        rdzv_backend="static",
        rdzv_endpoint=f"{ip}:{port}",
        rdzv_configs={"rank": offset // nproc},
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
    )
    for name in list(logging.root.manager.loggerDict):  # recforge reports failures and signals itself
        if name.startswith(("torch.distributed.elastic", "torch.multiprocessing")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    errors = Path(tempfile.mkdtemp(prefix="recforge-ranks-"))
    previous = os.environ.get(ERRORS_ENV)
    os.environ[ERRORS_ENV] = str(errors)  # the spawned ranks inherit it
    try:
        elastic_launch(config, entry)(list(argv))
    except SignalException as exc:  # Ctrl-C / SIGTERM: the launcher stopped every rank; rank 0 said where to resume
        print(f"recforge: stopped by signal {exc.sigval.value}", file=sys.stderr)
        return 130
    except ChildFailedError as exc:
        causes = {r: f for r, f in exc.failures.items() if f.exitcode != PEER_FAILED} or exc.failures
        failed = min(causes, key=lambda r: (causes[r].timestamp, r))
        return _report_failure(errors, failed, total, causes[failed].exitcode, debug)
    finally:
        if previous is None:
            os.environ.pop(ERRORS_ENV, None)
        else:
            os.environ[ERRORS_ENV] = previous
        shutil.rmtree(errors, ignore_errors=True)
    return 0


def check_processes(nproc: int, total: int, offset: int) -> None:
    """Refuse process counts the machine or the group cannot hold (one line, with the counts)."""
    if total % nproc or offset % nproc:
        raise ConfigError(
            f"world_size ({total}) and offset ({offset}) must be multiples of nproc ({nproc}): nproc processes run "
            "on each machine, and offset is the rank of this machine's first one"
        )
    import torch

    if torch.cuda.is_available():
        if nproc > torch.cuda.device_count():
            raise ConfigError(
                f"nproc {nproc} is more than the {torch.cuda.device_count()} GPU(s) of this machine (one process per "
                "GPU); lower nproc, or set device: cpu to train with CPU processes"
            )
        return
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if nproc > cpus:
        raise ConfigError(
            f"nproc {nproc} is more than the {cpus} CPU core(s) this process may use: the processes would share "
            f"cores and train slower than one; use nproc <= {cpus}"
        )


def check_port_free(ip: str, port: int) -> None:
    """Refuse a rendezvous port that another program listens on at ``ip`` (one line naming it)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"config key 'port': port {port} is in use on {ip}; choose a free one (--port N), or stop the "
                    "program that holds it (another recforge run?)"
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(
                    f"config key 'ip': {ip} is not an address of this machine, but the first process (offset 0) "
                    "runs here and listens on it; set ip to this machine's address"
                ) from None
            raise


def _report_failure(errors: Path, rank: int, total: int, status: int, debug: bool) -> int:
    """Print the failed rank's error once; return the exit status to use."""
    written = errors / f"rank{rank}.txt"
    process = f"process {rank} of {total}"
    if written.is_file():
        message, _, trace = written.read_text(encoding="utf-8").partition("\n")
        if debug and trace:
            print(trace.rstrip(), file=sys.stderr)
        line = f"{message} ({process} failed; the others were stopped)"
    elif status < 0:
        name = signal.Signals(-status).name if -status in signal.valid_signals() else str(-status)
        line = f"{process} was killed by {name}; the others were stopped"
    else:
        line = f"{process} failed (exit status {status}); the others were stopped"
    print(f"recforge: error: {line}", file=sys.stderr)
    return status if status > 0 else 1


def launched_by_recforge() -> bool:
    """Whether this process is a rank started by ``launch`` (which prints the ranks' errors)."""
    return distributed.started_as_rank() and bool(os.environ.get(ERRORS_ENV))


def record_error(message: str, trace: str = "") -> None:
    """This rank's error, for ``launch`` to print: ``message`` (one line) and a traceback text."""
    message = message.strip().splitlines()[0] if message.strip() else "(no message)"
    folder = Path(os.environ[ERRORS_ENV])
    rank = os.environ.get("RANK", "0")
    (folder / f".rank{rank}.tmp").write_text(f"{message}\n{trace}", encoding="utf-8")
    os.replace(folder / f".rank{rank}.tmp", folder / f"rank{rank}.txt")


def finish_rank(status: int | BaseException) -> None:
    """End a launched rank: exit with ``status`` (an exit status, or the exception the command raised). A
    collective that failed because another rank stopped exits with ``PEER_FAILED`` after a moment, so the launcher
    names the rank that failed first. Any other exception is recorded for the launcher (exit status 1); under
    torchrun it propagates with its traceback."""
    if isinstance(status, BaseException):
        if distributed.peer_failed(status):
            time.sleep(PEER_GRACE_S)
            status = PEER_FAILED
        elif launched_by_recforge():
            from recforge.errors import RecforgeError

            trace = "".join(traceback.format_exception(status))
            if isinstance(status, RecforgeError):  # raised with --debug: the message, the traceback, status 2
                record_error(str(status), trace)
                status = 2
            else:  # a bug: named by its type
                record_error(f"{type(status).__name__}: {status}", trace)
                status = 1
        else:
            raise status
    if status:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)  # no interpreter shutdown: tearing down a process group with a dead peer aborts
    distributed.leave()
