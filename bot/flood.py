"""The flood windows of recent senders, in this process's memory (bounded, least recently seen forgotten).

In memory rather than in the conversation row: the decision needs no database round trip, and a
dropped update must not wait for (or hold) the chat's row lock. With several webhook workers each
process limits on its own, so a person may get up to ``limit`` × workers updates handled per window;
that is fine for a safety valve against floods, not a quota.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from flows.flood import FloodRule, Verdict, Window, decide

# 20 updates in 10 seconds: more than anyone types or taps, far less than a script sends.
DEFAULT_RULE = FloodRule(limit=20, window=timedelta(seconds=10))
# About 100 bytes per remembered person at the default rule's limit: a few MB at most.
MAX_PEOPLE = 10_000


class FloodGuard:
    """Decides per update whether its sender is flooding, remembering at most ``max_people`` senders."""

    def __init__(self, rule: FloodRule | None = None, max_people: int = MAX_PEOPLE) -> None:
        self.rule = rule if rule is not None else DEFAULT_RULE
        self._max = max_people
        self._windows: OrderedDict[int, Window] = OrderedDict()

    def check(self, user_id: int, now: datetime) -> Verdict:
        verdict, window = decide(self._windows.get(user_id, Window()), now, self.rule)
        self._windows[user_id] = window
        self._windows.move_to_end(user_id)
        while len(self._windows) > self._max:
            # Forgetting a flooder early is harmless: they get a fresh window, at worst one more notice.
            self._windows.popitem(last=False)
        return verdict

    def __len__(self) -> int:
        return len(self._windows)
