"""Step-level interleaving: the variants of a row run in threads that take turns a few optimizer steps
at a time, so a burst of load from another process hits every variant alike."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.clock import quiet
from bench.modes import Mode
from bench.stats import counterbalanced


class Turns:
    """Exactly one variant runs at any moment: first each sets up in turn (Trainer.fit's set-up, the
    observatory's step-0 probes, up to its first batch), then they take turns a few optimizer steps at a
    time (A B C A B C ...). A participant waits for its first turn with begin(), calls arrive() at its
    first step boundary, switch() between turns and leave() when done (its teardown runs in its last
    turn)."""

    TIMEOUT_S = 3600.0

    def __init__(self, names: Sequence[str]) -> None:
        self.order, self.active, self.arrived = list(names), set(names), set()
        self.current: str | None = self.order[0] if self.order else None
        self.cond = threading.Condition()

    def _next_after(self, name: str) -> str | None:
        """The next participant in order: during set-up one that has not arrived yet, afterwards any."""
        setting_up = not self.arrived >= self.active
        i = self.order.index(name)
        for k in range(1, len(self.order) + 1):
            candidate = self.order[(i + k) % len(self.order)]
            if candidate in self.active and not (setting_up and candidate in self.arrived):
                return candidate
        return None

    def _wait_turn(self, name: str) -> None:
        if not self.cond.wait_for(lambda: self.current == name, timeout=self.TIMEOUT_S):
            raise RuntimeError(f"{name} waited over {self.TIMEOUT_S:.0f} s for its turn")

    def _pass(self, name: str) -> None:
        self.current = self._next_after(name)
        if self.current is None and self.active:  # everyone else has arrived: start the turns
            self.current = next(n for n in self.order if n in self.active)
        self.cond.notify_all()

    def begin(self, name: str) -> None:
        with self.cond:
            self._wait_turn(name)

    def arrive(self, name: str) -> None:
        with self.cond:
            self.arrived.add(name)
            if self.arrived >= self.active:  # the last to set up: the turns start from the first
                self.current = next(n for n in self.order if n in self.active)
                self.cond.notify_all()
            else:
                self._pass(name)
            self._wait_turn(name)

    def switch(self, name: str) -> None:
        with self.cond:
            self._pass(name)
            self._wait_turn(name)

    def leave(self, name: str) -> None:
        with self.cond:
            was_current = self.current == name
            self.active.discard(name)
            self.arrived.discard(name)
            if not self.active:
                self.current = None
            elif was_current:
                self.current = self._next_after(name) or next(n for n in self.order if n in self.active)
            self.cond.notify_all()


class TurnTaker:
    """One participant's side of Turns: its turn lasts `block` steps, of which the first is not counted:
    it runs on caches the other variants filled (a cost of the interleaving, not of the variant)."""

    def __init__(self, turns: Turns, name: str, block: int) -> None:
        self.turns, self.name, self.block = turns, name, block
        self.arrived, self.in_turn = False, 0

    def boundary(self) -> bool:
        """Call before every step; returns whether that step's time counts."""
        if not self.arrived:
            self.turns.arrive(self.name)
            self.arrived, self.in_turn = True, 0
        elif self.in_turn >= self.block:
            self.turns.switch(self.name)
            self.in_turn = 0
        counted = self.in_turn > 0
        self.in_turn += 1
        return counted


def steps_needed(warmup: int, window: int, block: int) -> int:
    """Optimizer steps to run so that `window` counted steps follow `warmup` (one per turn is not counted)."""
    per_turn = max(1, block - 1)
    return warmup + window + -(-(window + 1) // per_turn) + 2


def counted_window(counted: Mapping[int, bool], warmup: int, window: int, last: int) -> list[int]:
    steps = [s for s in range(warmup + 1, last + 1) if counted.get(s)]
    return steps[:window]


def turn_block(est_step_s: float, mode: Mode, window: int) -> int:
    """Steps per turn: one uncounted step plus enough counted ones to fill about mode.turn_s."""
    return 1 + max(1, min(window, round(mode.turn_s / max(est_step_s, 1e-6))))


@dataclass
class Participant:
    run: Callable[[], None]  # runs in its own thread: arrive, steps with switch() between them
    result: Callable[[], Any]  # called after the thread ended


def alternate(participants: Mapping[str, Callable[[Turns, str], Participant]]) -> dict[str, Any]:
    """Build every participant (here, in the main thread), then run them step-interleaved."""
    turns = Turns(list(participants))
    built = {name: make(turns, name) for name, make in participants.items()}
    errors: list[BaseException] = []

    def target(name: str) -> None:
        try:
            turns.begin(name)
            built[name].run()
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(error)
        finally:
            turns.leave(name)

    threads = [threading.Thread(target=target, args=(name,), name=f"bench-{name}") for name in built]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return {name: p.result() for name, p in built.items()}


def interleaved_samples(variants: Mapping[str, Callable[[Turns, str], Participant]], samples: int) -> dict[str, list[Any]]:
    """`samples` step-interleaved runs of all variants (fresh models each time), the order of turns
    reversed every other run: per variant, one sample per run."""
    out: dict[str, list[Any]] = {name: [] for name in variants}
    for r in range(samples):
        order = counterbalanced(list(variants), r)
        with quiet():
            res = alternate({name: variants[name] for name in order})
        for name in variants:
            out[name].append(res[name])
        gc.collect()
    return out
