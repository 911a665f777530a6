"""Fair shares of the training slots: a first-come queue that knows each waiter's place and
wait, and a running run's time cap that shrinks while others wait.

The rule (README, "Identity and fair shares"): a run may use its requested time, at most
`HWML_MAX_RUN_SECONDS` (the cap), counted from the moment it gets its slot (data preparation
included). While W visitors wait, every running run's share is `cap / (1 + W)`, never under
`MIN_SHARE_SECONDS` (nor over the cap); a run past its share is stopped like Stop (best weights
kept). A waiter's estimate is the time until a slot frees, assuming every run ahead of it uses
its whole share (plus `SLACK_SECONDS` each to build the model and save): an upper bound while
the rule holds, since the runs ahead can only get shorter shares as more visitors arrive.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable

MIN_SHARE_SECONDS = 60.0  # a running run is never cut below this while others wait
SLACK_SECONDS = 10.0  # per run ahead: building the model, the last save after the stop


def fair_share(cap: float, waiting: int, min_share: float = MIN_SHARE_SECONDS) -> float:
    """A running run's time cap while `waiting` visitors wait for a slot."""
    if waiting <= 0:
        return cap
    return min(cap, max(min_share, cap / (1 + waiting)))


class TrainingSlots:
    """At most n holders at once; the rest wait first come, first served and know their place.

    Each ticket says how long it asks for (`seconds`, None: the whole cap); a holder's deadline is
    its start plus its fair share (`deadline`), re-read by the job's watcher as the queue changes.
    """

    def __init__(
        self,
        n: int,
        cap: float = float("inf"),
        clock: Callable[[], float] = time.monotonic,
        min_share: float = MIN_SHARE_SECONDS,
    ):
        self.n, self.cap, self.clock, self.min_share = n, cap, clock, min_share
        self._cond = threading.Condition()
        self._running: dict[int, float] = {}  # ticket -> when it got its slot
        self._waiting: list[int] = []
        self._asks: dict[int, float] = {}  # ticket -> seconds asked for (<= cap)

    def _ask(self, ticket: int) -> float:
        return min(self._asks.get(ticket, self.cap), self.cap)

    def acquire(
        self,
        ticket: int,
        stop: threading.Event,
        on_wait: Callable[[int], None] = lambda p: None,
        poll_s: float = 0.2,
        seconds: float | None = None,
    ) -> bool:
        """Block until `ticket` holds a slot (True) or `stop` is set while waiting (False).

        on_wait(position) is called whenever the 1-based queue position changes.
        """
        with self._cond:
            self._waiting.append(ticket)
            self._asks[ticket] = self.cap if seconds is None else float(seconds)
            last = None
            try:
                while True:
                    position = self._waiting.index(ticket) + 1
                    if position == 1 and len(self._running) < self.n:
                        self._running[ticket] = self.clock()
                        return True
                    if stop.is_set():
                        self._asks.pop(ticket, None)
                        return False
                    if position != last:
                        on_wait(position)
                        last = position
                    self._cond.wait(poll_s)
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()

    def release(self, ticket: int) -> None:
        with self._cond:
            self._running.pop(ticket, None)
            self._asks.pop(ticket, None)
            self._cond.notify_all()

    def position(self, ticket: int) -> int:
        """0 while running, 1.. while waiting, -1 when unknown (finished or never queued)."""
        with self._cond:
            if ticket in self._running:
                return 0
            return self._waiting.index(ticket) + 1 if ticket in self._waiting else -1

    @property
    def busy(self) -> int:
        with self._cond:
            return len(self._running)

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    def deadline(self, ticket: int) -> float | None:
        """When a holder's share runs out now (clock time), None when it holds no slot."""
        with self._cond:
            started = self._running.get(ticket)
            if started is None:
                return None
            return started + min(self._ask(ticket), fair_share(self.cap, len(self._waiting), self.min_share))

    def share(self) -> float:
        """The share a running run has now (seconds)."""
        with self._cond:
            return fair_share(self.cap, len(self._waiting), self.min_share)

    def estimate_wait(self, ticket: int) -> float | None:
        """Seconds until `ticket` should get a slot, at most (see the module's rule); 0 while it
        holds one, None when it is not queued."""
        with self._cond:
            if ticket in self._running:
                return 0.0
            if ticket not in self._waiting:
                return None
            now, position = self.clock(), self._waiting.index(ticket) + 1
            # the runs holding slots: at least `position` visitors wait until they end
            free = [
                max(0.0, started + min(self._ask(t), fair_share(self.cap, position, self.min_share)) - now)
                + SLACK_SECONDS
                for t, started in self._running.items()
            ]
            free += [0.0] * (self.n - len(free))
            heapq.heapify(free)
            for k, ahead in enumerate(self._waiting[: position - 1], start=1):
                at = heapq.heappop(free)  # the slot the k-th waiter takes; position - k wait behind it
                heapq.heappush(
                    free, at + min(self._ask(ahead), fair_share(self.cap, position - k, self.min_share)) + SLACK_SECONDS
                )
            return free[0]


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}"
