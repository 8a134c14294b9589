""":class:`AccessLoggedProtocol`: the hot-path protocol with an access line for each answer it
gives itself (``access_log`` on; :mod:`headcount.http.access_log`). A request it hands to
uvicorn's way is logged there instead, by the app, once.

Answers are written in request order (the chain's rule), so the requests parsed and not yet
answered wait in a queue, and each answer written takes the first one.
"""

from __future__ import annotations

import collections
from typing import Any

from headcount.http.access_log import log_request
from headcount.http.protocol import HotPathProtocol
from headcount.http.reply import Reply

__all__ = ["AccessLoggedProtocol"]


class AccessLoggedProtocol(HotPathProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (method, target, HTTP version) of hot-path requests parsed and not yet answered.
        self._unanswered: collections.deque[tuple[str, bytes, str]] = collections.deque()
        self._queued = False  # the request being parsed is the last one queued

    def on_message_begin(self) -> None:
        self._queued = False
        super().on_message_begin()

    def on_message_complete(self) -> None:
        if self._route is not None:  # answered here (or handed over, see below)
            parser = self.parser
            self._unanswered.append(
                (parser.get_method().decode("latin-1"), self.url, parser.get_http_version())
            )
            self._queued = True
        super().on_message_complete()

    def _take_asgi_way(self, body: bytes | None = None) -> None:
        if self._queued:  # handed to uvicorn after all: the app logs it
            self._unanswered.pop()
            self._queued = False
        super()._take_asgi_way(body)

    def _put(self, reply: Reply, keep_alive: bool, head_only: bool) -> None:
        if self._unanswered:
            method, target, version = self._unanswered.popleft()
            log_request(self.client, method, target, version, reply[0])
        super()._put(reply, keep_alive, head_only)

    def _hold_only_the_stream(self) -> None:
        # A stream's head was just written (not through _put): its request is answered.
        if self._unanswered:
            method, target, version = self._unanswered.popleft()
            log_request(self.client, method, target, version, 200)
        super()._hold_only_the_stream()
