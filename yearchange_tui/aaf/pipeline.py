"""Where the records of a delivery are read and prepared: inline, or in reader processes.

The importer asks a *source* for the prepared records of each file, in delivery
order (:meth:`InlineSource.open_file`, :meth:`ProcessSource.open_file`):

- :class:`InlineSource` parses (:class:`~yearchange_tui.aaf.parser.AafFileReader`)
  and prepares (:class:`~yearchange_tui.aaf.prepare.Preparer`) each record on the
  caller's thread, just before the importer applies it.
- :class:`ProcessSource` does the same in reader processes (at most
  :data:`MAX_READERS`, one file each at a time) while the importer validates
  cross-references and writes: parsing runs on other cores than writing. Each
  reader sends batches of prepared records (pickled, at most
  :data:`RECORDS_PER_MESSAGE` per message) through a pipe; a thread of the
  importer drains each pipe into a bounded queue (:data:`QUEUE_MESSAGES`), so a
  reader keeps reading while the importer writes a batch, and memory stays flat
  whatever the delivery size: when its queue and its pipe are full, a reader waits.
  A file refused whole in a reader (:class:`~yearchange_tui.aaf.parser.AafFileError`)
  is raised again in the importer with its code, file, line and parameters when the
  importer reaches that file, so the delivery is refused as inline; any other
  failure of a reader is raised too. The readers are stopped whenever the importer
  stops (:meth:`ProcessSource.close`).

Both give the same prepared records in the same order (same rejects, same rows); a
test imports the same deliveries both ways and compares every row. Readers are
forked (``fork`` when this process runs a single thread, else ``forkserver``: never
a fork of a multi-threaded process). Deliveries under :data:`PROCESS_MIN_BYTES`, a
machine with fewer than :data:`MIN_CPUS` processors, or ``YEARCHANGE_AAF_READER=inline``
read inline (``=process`` forces reader processes). Runs on the caller's thread, plus, for a
:class:`ProcessSource`, one pump thread per reader until it is closed.
"""
from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from yearchange_tui.aaf.delivery import KIND_ETAB, KIND_MATIERE, KIND_MEF, DeliveryFile
from yearchange_tui.aaf.parser import (
    AafFileError,
    AafFileReader,
    FileHeader,
    Prologue,
)
from yearchange_tui.aaf.prepare import Prepared, Preparer, unwire_batch, wire_batch
from yearchange_tui.aaf.records import EAGER_ATTRIBUTES

READER_ENV = "YEARCHANGE_AAF_READER"
"""``auto`` (default), ``process`` or ``inline``."""

PROCESS_MIN_BYTES = 4 * 1024 * 1024
"""Smaller deliveries are read inline: reader processes cost more than they save (measured:
no gain at 3 MB, 15 % less time at 6 MB, 20 % at 10 MB on two processors)."""

MIN_CPUS = 3
"""Processors needed for reader processes (the importer, the database, and a reader).

Reader processes cost CPU the inline reading does not: the records' XML serialised for
the importer, pickling both ways, and above all the copy-on-write of the importing
process's pages while forked readers share them (about 10,000 page copies in the
importer for the sample's delivery, a fixed cost). Measured on two processors shared with
other work (the bench's 10 MB delivery, medians of interleaved runs): on SQLite, inline
0.60 CPU-s against 0.80 with two readers (importer 0.38 + readers 0.42), about a third
more, and a wall clock that went either way (readers 1.2 times faster at load 2 and 1.3
at load 3.5, inline 1.6 times faster at load 6.7); on PostgreSQL with its server on the
same processors (load 5), inline 2.67 s and 1.20 client CPU-s against 3.16 s and 1.73
CPU-s (importer 0.87 + readers 0.86). Two processors buy some wall clock on a quiet machine at a third
more CPU, and lose both under load: ``MIN_CPUS = 2`` gives the readers back."""

RECORDS_PER_MESSAGE = 256
"""Prepared records per message from a reader process."""

MAX_READERS = 2
"""Reader processes at most (with the importer: three processes, none busy all the time)."""

READER_NICE = 5
"""Niceness added to reader processes (they run ahead of the importer, which must not wait)."""

QUEUE_MESSAGES = 8
"""Messages received ahead of the importer (with the pipe: what may be in flight)."""

PIPE_BYTES = 1024 * 1024
"""Pipe capacity asked for (Linux)."""

_F_SETPIPE_SZ = 1031
_ONE_READER_KINDS = frozenset((KIND_ETAB, KIND_MATIERE, KIND_MEF))

FileSpec = tuple[Path, str, str, Prologue]
"""What the reader process needs of a file: path, name, kind, prologue."""


class FileOutcome:
    """What is known of a file once all its records are read (as an ``AafFileReader``)."""

    def __init__(self, prologue: Prologue) -> None:
        self.record_count = 0
        self.sha256 = ""
        self.header = FileHeader.from_prologue(prologue)


class InlineSource:
    """Read and prepare records on the caller's thread."""

    def __init__(self) -> None:
        self.preparer = Preparer(capture=False)

    def new_group(self) -> None:
        """A new dated delivery starts."""
        self.preparer.new_group()

    def open_file(self, delivery_file: DeliveryFile) -> tuple[Iterator[Prepared], Any]:
        """The prepared records of a file, and its outcome (complete once they are read)."""
        reader = AafFileReader(delivery_file.path, delivery_file.name, delivery_file.prologue,
                               EAGER_ATTRIBUTES.get(delivery_file.kind, ()))
        return self._records(reader, delivery_file.kind), reader

    def _records(self, reader: AafFileReader, kind: str) -> Iterator[Prepared]:
        prepare = self.preparer.prepare
        for raw in reader.records():
            yield prepare(raw, kind)

    def close(self) -> None:
        """Nothing to stop."""


class _Reader:
    """One reader process, its pipe, and the thread that drains the pipe into a queue."""

    def __init__(self, context: Any, groups: list[list[FileSpec]], number: int) -> None:
        receiver, sender = context.Pipe(duplex=False)
        _grow_pipe(sender)
        self.connection = receiver
        self.process = context.Process(target=reader_main, args=(sender, receiver, groups),
                                       name=f"yearchange-aaf-reader-{number}", daemon=True)
        try:
            self.process.start()
        finally:
            sender.close()
        self.queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_MESSAGES)
        self.stopping = threading.Event()
        self.pump_thread: threading.Thread | None = None

    def start_pump(self) -> None:
        """Start draining the pipe (after every reader is forked: never fork with threads)."""
        self.pump_thread = threading.Thread(target=self._pump, name="yearchange-aaf-pump",
                                            daemon=True)
        self.pump_thread.start()

    def _pump(self) -> None:
        receive = self.connection.recv_bytes
        try:
            while not self.stopping.is_set():
                if not self._put(receive()):
                    return
        except (EOFError, OSError):
            pass
        self._put(None)  # the child closed its end: nothing more will come

    def _put(self, data: bytes | None) -> bool:
        while True:
            try:
                self.queue.put(data, timeout=0.1)
                return True
            except queue.Full:
                if self.stopping.is_set():
                    return False

    def receive(self) -> tuple[Any, ...]:
        """The next message of this reader."""
        return pickle.loads(self.receive_bytes())  # our own child, through our own pipe

    def receive_bytes(self) -> bytes:
        """The next message of this reader, as sent."""
        data = self.queue.get()
        if data is None:
            self.process.join(5)
            raise RuntimeError("le processus de lecture AAF s'est arrêté (code "
                               f"{self.process.exitcode})")
        return data

    def stop(self) -> None:
        """Ask the pump to stop and the process to end (at once if still reading)."""
        self.stopping.set()

    def join(self) -> None:
        """Wait for the process and the pump; release the pipe."""
        self.process.join(0.05)
        if self.process.is_alive():
            self.process.terminate()  # its end of the pipe closes: the pump sees the end
        self.process.join()
        if self.pump_thread is not None:
            self.pump_thread.join()
        self.connection.close()
        self.process.close()


class ProcessSource:
    """Read and prepare records in reader processes (see the module docstring).

    Files of the kinds whose records are checked against earlier ones of the same
    kind (structures, subjects, MEF: identifiers added twice; small files) all go to
    the last reader; person files are dealt in turn to the readers from the first
    one, so that the first student file is read from the start, while the importer
    prepares the database, and the next file while the importer applies the current
    one.

    Args:
        groups: the delivery's files, by dated delivery, in the order they are asked for.
        method: the multiprocessing start method (``fork`` or ``forkserver``).
        readers: how many reader processes.
    """

    def __init__(self, groups: Sequence[Sequence[DeliveryFile]], method: str,
                 readers: int = 1) -> None:
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            # As the default (the main module), plus this module: readers start at once.
            context.set_forkserver_preload(["__main__", __name__])
        self.assignment: dict[int, int] = {}  # id of a DeliveryFile -> reader
        specs: list[list[list[FileSpec]]] = [[[] for _ in groups] for _ in range(readers)]
        turn = 0
        for position, group in enumerate(groups):
            for delivery_file in group:
                if delivery_file.kind in _ONE_READER_KINDS:
                    number = readers - 1
                else:
                    number, turn = turn % readers, turn + 1
                self.assignment[id(delivery_file)] = number
                specs[number][position].append((delivery_file.path, delivery_file.name,
                                                delivery_file.kind, delivery_file.prologue))
        self.readers: list[_Reader] = []
        try:
            for number, reader_groups in enumerate(specs):
                self.readers.append(_Reader(context, reader_groups, number))
            for reader in self.readers:
                reader.start_pump()
        except BaseException:
            self.close()
            raise

    def new_group(self) -> None:
        """A new dated delivery starts (the reader processes follow the same groups)."""

    def open_file(self, delivery_file: DeliveryFile) -> tuple[Iterator[Prepared], FileOutcome]:
        """The prepared records of a file, and its outcome (complete once they are read)."""
        outcome = FileOutcome(delivery_file.prologue)
        reader = self.readers[self.assignment[id(delivery_file)]]
        return self._records(reader, delivery_file, outcome), outcome

    @staticmethod
    def _records(reader: _Reader, delivery_file: DeliveryFile,
                 outcome: FileOutcome) -> Iterator[Prepared]:
        name, kind = delivery_file.name, delivery_file.kind
        receive = reader.receive
        while True:
            message = receive()
            tag = message[0]
            if tag in ("records", "file") and message[1] != name:
                raise RuntimeError(f"lecteur AAF désynchronisé : {message[1]} au lieu de {name}")
            if tag == "records":
                # The batch's captured XML follows as one blob.
                yield from unwire_batch(name, kind, message[2], reader.receive_bytes())
            elif tag == "file":
                outcome.record_count, outcome.sha256 = message[2], message[3]
                return
            elif tag == "refused":
                _, code, file, line, params = message
                raise AafFileError(code, file, line, **params)
            else:
                error, text = message[1], message[2]
                if isinstance(error, BaseException):
                    error.add_note(f"(dans le processus de lecture AAF)\n{text}")
                    raise error
                raise RuntimeError(f"échec du processus de lecture AAF :\n{text}")

    def close(self) -> None:
        """Stop the reader processes (at once when the import stops early) and the pumps."""
        for reader in self.readers:
            reader.stop()
        for reader in self.readers:
            reader.join()


def reader_method(delivery_bytes: int) -> str | None:
    """The start method of reader processes for this delivery, or None to read inline."""
    setting = os.environ.get(READER_ENV, "auto").strip().lower()
    if setting == "inline" or (setting != "process" and (delivery_bytes < PROCESS_MIN_BYTES
                                                         or _cpus() < MIN_CPUS)):
        return None
    methods = multiprocessing.get_all_start_methods()
    # A plain fork only on Linux (elsewhere system libraries may not survive it) and only
    # from a single-threaded process (a lock held by another thread would stay held).
    if "fork" in methods and sys.platform.startswith("linux") and threading.active_count() == 1:
        return "fork"
    if "forkserver" in methods:
        return "forkserver"
    return None


def reader_count(groups: Sequence[Sequence[DeliveryFile]]) -> int:
    """How many reader processes: one per person file, at most :data:`MAX_READERS`."""
    person_files = sum(1 for group in groups for f in group
                       if f.kind not in _ONE_READER_KINDS)
    return max(1, min(MAX_READERS, person_files))


def open_source(groups: Sequence[Sequence[DeliveryFile]]) -> InlineSource | ProcessSource:
    """The source of prepared records for a delivery (inline or in reader processes)."""
    method = reader_method(sum(f.size for group in groups for f in group))
    if method is None:
        return InlineSource()
    return ProcessSource(groups, method, reader_count(groups))


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _grow_pipe(connection: Any) -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError, ImportError):
        # fcntl exists only on POSIX; a larger pipe is an optimisation, not a requirement.
        import fcntl

        fcntl.fcntl(connection.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)


# --- the reader process ------------------------------------------------------------------


def reader_main(sender: Any, receiver: Any, groups: list[list[FileSpec]]) -> None:
    """Body of the reader process: read, prepare and send every record of the delivery."""
    receiver.close()  # only the importer reads: a write fails at once if it has stopped
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the importer decides when to stop
    gc.disable()
    if READER_NICE:
        # The importer is the one serial stage: on a busy machine it gets the processor first.
        with contextlib.suppress(OSError, AttributeError):
            os.nice(READER_NICE)
    try:
        _read(sender, groups)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the importer stopped: nothing more to do
    except BaseException as error:  # noqa: BLE001 - every failure goes to the importer
        text = traceback.format_exc()
        try:
            pickle.dumps(error)
        except Exception:  # noqa: BLE001 - an exception that cannot cross: its text does
            error = RuntimeError(repr(error))
        with contextlib.suppress(OSError):
            sender.send_bytes(pickle.dumps(("failed", error, text), pickle.HIGHEST_PROTOCOL))
    finally:
        sender.close()


def _read(sender: Any, groups: list[list[FileSpec]]) -> None:
    preparer = Preparer(capture=True)
    send = sender.send_bytes
    dumps = pickle.dumps
    protocol = pickle.HIGHEST_PROTOCOL
    for files in groups:
        preparer.new_group()
        for path, name, kind, prologue in files:
            reader = AafFileReader(path, name, prologue, EAGER_ATTRIBUTES.get(kind, ()))
            prepare = preparer.prepare
            batch: list[Prepared] = []

            def flush(batch: list[Prepared] = batch, name: str = name) -> None:
                records, blob = wire_batch(batch)
                send(dumps(("records", name, records), protocol))
                send(blob)
                batch.clear()

            try:
                for raw in reader.records():
                    batch.append(prepare(raw, kind))
                    if len(batch) >= RECORDS_PER_MESSAGE:
                        flush()
            except AafFileError as error:
                if batch:
                    flush()
                send(dumps(("refused", error.code, error.file, error.line, error.params),
                           protocol))
                return
            if batch:
                flush()
            send(dumps(("file", name, reader.record_count, reader.sha256), protocol))
