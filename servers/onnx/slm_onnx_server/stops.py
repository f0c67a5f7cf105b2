"""Stop strings, matched on the decoded text in time linear in the output; no dependency on the runtime.

onnxruntime-genai's own stop strings need an engine configured for dynamic batching (not available on CPU),
so the server matches them. Each stop string has a Knuth-Morris-Pratt automaton: every decoded character
advances each automaton once (amortised), so the cost is O(output length x number of stop strings) whatever
the stop strings' lengths, and only the text that could still be the start of a stop string is kept.
"""

from __future__ import annotations

from collections.abc import Sequence


def _failure(pattern: str) -> list[int]:
    """KMP failure function: for each prefix, the length of its longest proper border."""
    fail = [0] * len(pattern)
    k = 0
    for i in range(1, len(pattern)):
        while k and pattern[i] != pattern[k]:
            k = fail[k - 1]
        if pattern[i] == pattern[k]:
            k += 1
        fail[i] = k
    return fail


class StopMatcher:
    """Finds stop strings in the growing output and holds back text that could be the start of one.

    When several stop strings match, the one that ends first wins; the output is cut where it starts.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self._fail = [_failure(s) for s in self.stops]
        self._state = [0] * len(self.stops)
        self._pending = ""  # decoded, not emitted: at most the longest partial match
        self.hit = False

    def feed(self, piece: str) -> tuple[str, bool]:
        """Add decoded text; returns (text safe to emit now, whether a stop string was hit)."""
        if self.hit:
            return "", True
        if not self.stops:
            return piece, False
        base = len(self._pending)
        pending = self._pending + piece
        states = self._state
        stops = self.stops
        fails = self._fail
        for offset, char in enumerate(piece):
            for i, stop in enumerate(stops):
                k = states[i]
                while k and stop[k] != char:
                    k = fails[i][k - 1]
                if stop[k] == char:
                    k += 1
                if k == len(stop):
                    self.hit = True
                    self._pending = ""
                    return pending[: base + offset + 1 - k], True
                states[i] = k
        cut = len(pending) - max(states)
        self._pending = pending[cut:]
        return pending[:cut], False

    def flush(self) -> str:
        """The held-back text, at the end of the generation (it did not become a stop string)."""
        out, self._pending = self._pending, ""
        return out
