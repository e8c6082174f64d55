"""The one shape of every server the tests start, whatever runs underneath.

Construct it (no side effect beyond picking a port), then either ``with Server(...) as s: s.url`` for
a block, or ``s = Server(...).start()`` ... ``s.stop()`` where a fixture's lifetime is not a block.
``start()`` returns the server once it answers and raises, with the reason, when it cannot start (a
test needing a real part fails, never skips); ``stop()`` may be called more than once.

Underneath: a uvicorn thread (:class:`tests.support.threaded.ThreadedServer`), a child process
(:class:`tests.support.processes.ServerProcess`), ``http.server`` (the kubelet stand-in) or an
asyncio loop in a thread (the delay relay).
"""

from __future__ import annotations

from typing import Self


class Server:
    """Base of the test servers: ``with`` calls :meth:`start` and :meth:`stop`."""

    @property
    def url(self) -> str:
        raise NotImplementedError

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
