"""Bursts of the provider's trouble: message requests answered with an error by their place in the order of
arrival, whatever they ask (scenarios' `bursts`), e.g. "the 30th to 44th requests get 429 with retry-after 3".

A real provider's rate limit depends on what everyone asked lately, not on the request; a burst models that while
staying reproducible: the same sequence of requests always meets the same errors.
"""

import threading

from simulator.scenarios import Burst


class BurstSchedule:
    """Numbers the message requests as they arrive and says which burst, if any, answers each."""

    def __init__(self, bursts: list[Burst]) -> None:
        self._bursts = bursts
        self._arrived = 0
        self._lock = threading.Lock()  # several in-process servers may share a schedule

    def answering(self) -> tuple[str, Burst] | None:
        """The burst that answers the request arriving now (its label for the request log), or None."""
        with self._lock:
            number, self._arrived = self._arrived, self._arrived + 1
        for index, burst in enumerate(self._bursts):
            if burst.after <= number < burst.after + burst.requests:
                return f"bursts[{index}]" + (f" ({burst.name})" if burst.name else ""), burst
        return None
