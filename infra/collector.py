"""Pausing Python's cyclic garbage collector around batch steps that allocate heavily.

Importing the Pulumi SDKs creates a few hundred thousand long-lived objects (their typed Args and
TypedDict classes), and running a program under the mock engine allocates far more short-lived ones.
With the collector on, each full collection traverses every one of the long-lived objects again:
on the prod plan that was about a fifth of the wall time, and on a 200-model plan more than that.
The steps wrapped here end quickly and free their garbage by reference counting; the collector is
switched back on afterwards, so cycles they leave are still reclaimed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused(keep: bool = False) -> Iterator[None]:
    """Run the body with the cyclic collector off; restore its previous state afterwards.

    ``keep``: what the body made lives until the process ends (a command-line plan), so it is frozen (see
    :func:`freeze`) before the collector is back on. Otherwise the first allocation after the body starts a full
    collection over the plan's objects: over a second of `check --stack prod`, only to free a few cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if keep:
            gc.freeze()
        if was_enabled:
            gc.enable()


def freeze() -> None:
    """Move every object alive now to the permanent generation: no collection traverses them again.

    For a command-line process, whose SDK modules and plan live until it exits: the rest of the
    command, and interpreter shutdown (which spent over a second collecting the SDKs' classes after a
    plan of the prod stack), skip them. Exit handlers and buffered output are unaffected.
    """
    gc.freeze()
