"""``swarmai logs``: the lines of a stack's services, from every replica, in time order.

Each line is a :class:`LogLine`: who wrote it (the model, or the service for
the others), which replica (the Swarm task's slot, the Compose container's
number), on which node (Swarm), when (the engine's timestamp) and what.
One stream is read per Swarm service (the manager gathers its tasks from
every node) or per Compose container, each in its own thread: without
``follow`` everything is read and sorted by time; with it, lines are printed
as they arrive, held back a fraction of a second so that lines arriving
together (a ``--tail`` backlog, a burst) still come out in time order.

The parsing, ordering and formatting are pure; only :func:`swarm_logs` and
:func:`compose_logs` talk to the engine.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import unquote_plus

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.errors import OperationError, SwarmaiError, UsageError
from swarmai.render import naming
from swarmai.render.bundle import service_plans
from swarmai.spec import Stack, Target

DEFAULT_TAIL = 100
# How long a followed line waits for lines of other streams that are older.
REORDER_S = 0.3
# How often a reader waiting on quiet streams wakes up (Ctrl-C is handled then).
_POLL_S = 0.5

TASK_ATTRIBUTE = "com.docker.swarm.task.id"
NODE_ATTRIBUTE = "com.docker.swarm.node.id"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
COMPOSE_NUMBER_LABEL = "com.docker.compose.container-number"
# A line the engine sent without a readable timestamp sorts first.
_NO_TIME = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    tail: int | None = DEFAULT_TAIL  # the last lines of each replica; None: all
    since: float | None = None  # Unix time of the oldest line wanted


@dataclass(frozen=True)
class LogLine:
    """One line a replica wrote."""

    source: str  # the model ("iris", "iris-canary"), else the service ("gateway")
    replica: int | None  # Swarm task slot / Compose container number; None: global
    node: str | None  # the node's hostname on Swarm; None on Compose (one host)
    timestamp: datetime
    text: str

    @property
    def prefix(self) -> str:
        """``SOURCE[/REPLICA][@NODE]``: ``iris/2@gpu-a`` on Swarm, ``iris/2`` on Compose."""
        replica = "" if self.replica is None else f"/{self.replica}"
        return f"{self.source}{replica}{'' if self.node is None else '@' + self.node}"


# What a backend's ``logs`` returns (in time order unless following).
LogLines = Iterator[LogLine]


def format_line(line: LogLine, *, width: int = 0, timestamps: bool = False) -> str:
    """``iris/2@gpu-a | text``, the prefix padded to ``width``; with ``timestamps`` the
    engine's time (UTC) before the text."""
    stamp = ""
    if timestamps:
        stamp = line.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ ")
    return f"{line.prefix.ljust(width)} | {stamp}{line.text}"


# --- which services -----------------------------------------------------------------


def source_names(stack: Stack) -> dict[str, str]:
    """Service -> what its lines are prefixed with: the model's name for its servers
    (``model-iris`` -> ``iris``, its canary ``iris-canary``); other services keep theirs."""
    names = {}
    for model in stack.models:
        names[naming.model_service(model)] = model.name
        names[naming.canary_service(model)] = f"{model.name}-canary"
    return names


def select_services(stack: Stack, stack_file: Path, target: Target, model: str | None,
                    services: Sequence[str]) -> list[str]:
    """The services whose logs to read: ``model``'s servers (its canary's too), the
    ``services`` named, or, when neither is given, every model's servers."""
    if model is not None and model not in {m.name for m in stack.models}:
        raise UsageError(f"{stack_file}: no model {model!r}; its models: "
                         f"{', '.join(m.name for m in stack.models)}")
    known = [plan.name for plan in service_plans(stack, target, host_ports=False)]
    for service in services:
        if service not in known:
            raise UsageError(f"{stack_file}: no service {service!r}; its services: "
                             f"{', '.join(known)}")
    everything = model is None and not services
    chosen = [m for m in stack.models if everything or m.name == model]
    servers = [name for m in chosen
               for name in (naming.model_service(m), naming.canary_service(m))]
    return list(dict.fromkeys([*servers, *services]))


# --- parsing what the engine sends ----------------------------------------------------


def split_timestamp(raw: str) -> tuple[datetime, str]:
    """``2026-12-02T05:34:05.741470090Z text`` -> (its time, ``text``)."""
    stamp, _, rest = raw.partition(" ")
    try:
        return datetime.fromisoformat(stamp), rest
    except ValueError:
        return _NO_TIME, raw


def split_details(rest: str) -> tuple[dict[str, str], str]:
    """``key=value,key=value text`` (``--details``; keys and values query-escaped by the
    engine) -> (the attributes, ``text``)."""
    details, _, text = rest.partition(" ")
    attributes = {}
    for pair in details.split(","):
        key, equals, value = pair.partition("=")
        if not equals:
            return {}, rest  # not a details field: a line of a container without any
        attributes[unquote_plus(key)] = unquote_plus(value)
    return attributes, text


def service_line(raw: str, source: str, slot_of: Callable[[str], int | None],
                 host_of: Callable[[str], str]) -> LogLine:
    """A line of ``service logs --details --timestamps``, its task and node named."""
    timestamp, rest = split_timestamp(raw)
    attributes, text = split_details(rest)
    task, node = attributes.get(TASK_ATTRIBUTE), attributes.get(NODE_ATTRIBUTE)
    return LogLine(source=source, replica=slot_of(task) if task else None,
                   node=host_of(node) if node else None, timestamp=timestamp, text=text)


def container_line(raw: str, source: str, replica: int | None) -> LogLine:
    """A line of ``logs --timestamps`` of one Compose container."""
    timestamp, text = split_timestamp(raw)
    return LogLine(source=source, replica=replica, node=None, timestamp=timestamp, text=text)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime) -> float:
    """``--since``, as docker reads it, as a Unix time: a duration before ``now`` (``90s``,
    ``10m``, ``1h30m``, ``2d``), an RFC 3339 date or time (no zone: local time), or a
    Unix timestamp."""
    value = text.strip()
    if re.fullmatch(f"(?:{_DURATION.pattern})+", value):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(value))
        return (now - timedelta(seconds=seconds)).timestamp()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    try:
        return datetime.fromisoformat(value).timestamp()  # naive: local time, as docker
    except ValueError:
        raise UsageError(f"--since {text!r}: expected a duration (10m, 1h30m), an RFC 3339 "
                         "time (2026-05-01T10:00:00Z) or a Unix timestamp") from None


# --- merging streams ------------------------------------------------------------------

Source = Callable[[], Iterable[LogLine]]


def in_time_order(lines: Iterable[LogLine]) -> list[LogLine]:
    """Sorted by timestamp; lines of one time keep their order (one stream's order)."""
    return sorted(lines, key=lambda line: line.timestamp)


class Reorder:
    """Followed lines held ``window`` seconds after they arrive, let out oldest first:
    lines that arrive together (one stream's backlog after another's) come out in
    time order; a line waits at most about ``window``."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._held: list[tuple[datetime, int, float, LogLine]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._held)

    def add(self, line: LogLine, now: float) -> None:
        heapq.heappush(self._held, (line.timestamp, next(self._order), now, line))

    def due(self, now: float) -> list[LogLine]:
        """The lines to print at ``now``: the oldest, while it has waited its window."""
        out = []
        while self._held and self._held[0][2] + self._window <= now:
            out.append(heapq.heappop(self._held)[3])
        return out

    def wait(self, now: float) -> float | None:
        """Seconds until the oldest line is due (0: now); None when none is held."""
        return max(0.0, self._held[0][2] + self._window - now) if self._held else None

    def drain(self) -> list[LogLine]:
        out = [entry[3] for entry in sorted(self._held)]
        self._held.clear()
        return out


def read_lines(sources: Sequence[Source], options: LogOptions) -> Iterator[LogLine]:
    """Every source's lines: gathered and sorted, or (``follow``) as they come.

    Gathering reads the streams concurrently too, in the same daemon threads: a
    stream that never ends (an engine that hangs on a dead task's logs) must not
    keep an interrupted command from exiting, as a thread pool's threads would.
    """
    if options.follow:
        return followed(sources, REORDER_S)
    return iter(in_time_order(followed(sources, 0.0)))


@dataclass(frozen=True)
class _Ended:
    error: SwarmaiError | None = None


def followed(sources: Sequence[Source], window: float,
             clock: Callable[[], float] = time.monotonic) -> Iterator[LogLine]:
    """Lines of concurrent streams as they arrive (one daemon thread each, so an
    interrupted caller exits without waiting on a blocked read); ends when every
    stream has; a stream's failure is raised here."""
    feed: queue.Queue[LogLine | _Ended] = queue.Queue()
    for source in sources:
        threading.Thread(target=_pump, args=(source, feed), daemon=True).start()
    running, held = len(sources), Reorder(window)
    while running:
        wait = held.wait(clock())
        try:
            item = feed.get(timeout=_POLL_S if wait is None else wait)
        except queue.Empty:
            item = None
        if isinstance(item, _Ended):
            running -= 1
            if item.error is not None:
                raise item.error
        elif item is not None:
            held.add(item, clock())
        yield from held.due(clock())
    yield from held.drain()


def _pump(source: Source, feed: queue.Queue[LogLine | _Ended]) -> None:
    try:
        for line in source():
            feed.put(line)
    except Exception as error:  # a thread must report its failure, never die silently
        feed.put(_Ended(_failure(error)))
    else:
        feed.put(_Ended())


def _failure(error: Exception) -> SwarmaiError:
    """What the CLI reports (never a traceback) when reading a stream failed."""
    if isinstance(error, SwarmaiError):
        return error
    return OperationError(f"reading logs failed: {error!r}")


# --- the two targets --------------------------------------------------------------------


def swarm_logs(engine: Engine, stack: Stack, services: Sequence[str],
               options: LogOptions) -> LogLines:
    """The lines of ``services`` of the deployed stack, every task on every node."""
    present = {s["Spec"]["Name"]: s["ID"] for s in docker.stack_services(engine, stack.name)}
    wanted = [s for s in services if f"{stack.name}_{s}" in present]
    if not wanted:
        raise _not_running(stack, services, "swarm")
    names = _SwarmNames(engine, [present[f"{stack.name}_{s}"] for s in wanted])
    sources = source_names(stack)
    streams = [partial(_service_stream, engine, f"{stack.name}_{s}", sources.get(s, s), names,
                       options) for s in wanted]
    return read_lines(streams, options)


def _service_stream(engine: Engine, service: str, source: str, names: _SwarmNames,
                    options: LogOptions) -> Iterator[LogLine]:
    for raw in docker.service_log_lines(engine, service, follow=options.follow,
                                        tail=options.tail, since=options.since):
        yield service_line(raw, source, names.slot, names.host)


class _SwarmNames:
    """Task id -> slot, node id -> hostname; listed again (once per unknown id) when a
    line names a task that started after the listing: a rolling update, followed."""

    def __init__(self, engine: Engine, service_ids: Sequence[str]) -> None:
        self._engine, self._service_ids = engine, list(service_ids)
        self._lock = threading.Lock()  # several stream threads ask at once
        self._slots: dict[str, int | None] = {}
        self._hosts: dict[str, str] = {}
        self._asked: set[str] = set()
        self._list()

    def _list(self) -> None:
        for task in docker.service_tasks(self._engine, self._service_ids):
            slot = task.get("Slot")  # absent for a global service's tasks
            self._slots[task["ID"]] = int(slot) if slot else None
        self._hosts.update({n.node_id: n.hostname for n in docker.swarm_nodes(self._engine)})

    def _known(self, key: str, table: Mapping[str, object]) -> None:
        if key not in table and key not in self._asked:
            self._asked.add(key)
            self._list()

    def slot(self, task_id: str) -> int | None:
        with self._lock:
            self._known(task_id, self._slots)
            return self._slots.get(task_id)

    def host(self, node_id: str) -> str:
        with self._lock:
            self._known(node_id, self._hosts)
            return self._hosts.get(node_id, node_id[:12])


def compose_logs(engine: Engine, stack: Stack, services: Sequence[str],
                 options: LogOptions) -> LogLines:
    """The lines of ``services`` of the Compose project: one stream per container (a
    container started after this call is not followed)."""
    containers = []
    for container in docker.project_containers(engine, stack.name):
        labels = container.get("Labels") or {}
        service = labels.get(COMPOSE_SERVICE_LABEL, "")
        if service in services:
            number = labels.get(COMPOSE_NUMBER_LABEL, "")
            containers.append((service, int(number) if number.isdigit() else None,
                               str(container["Id"])))
    if not containers:
        raise _not_running(stack, services, "compose")
    sources = source_names(stack)
    streams = [partial(_container_stream, engine, container, sources.get(s, s), number, options)
               for s, number, container in sorted(containers, key=_by_replica)]
    return read_lines(streams, options)


def _by_replica(container: tuple[str, int | None, str]) -> tuple[str, int]:
    return container[0], container[1] or 0


def _container_stream(engine: Engine, container: str, source: str, replica: int | None,
                      options: LogOptions) -> Iterator[LogLine]:
    for raw in docker.container_log_lines(engine, container, follow=options.follow,
                                          tail=options.tail, since=options.since):
        yield container_line(raw, source, replica)


def _not_running(stack: Stack, services: Sequence[str], target: Target) -> OperationError:
    start = "swarmai deploy" if target == "swarm" else "swarmai up"
    return OperationError(f"stack {stack.name} runs none of {', '.join(services)} on {target} "
                          f"(start it with `{start} FILE`)")
