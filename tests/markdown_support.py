"""A markdown parser that never finishes by itself, for tests of stopped renders."""

from __future__ import annotations

import threading
import time

import pytest

from services import markdown


class Spinning:
    """A parse that runs for 30 s of pure-Python bytecode: only a stop ends it sooner,
    however loaded the machine is. Records the threads it ran on and whether it finished."""

    def __init__(self) -> None:
        self.ran_on: list[threading.Thread] = []
        self.finished: list[bool] = []

    def render(self, text: str) -> str:
        self.ran_on.append(threading.current_thread())
        until = time.monotonic() + 30
        while time.monotonic() < until:
            pass
        self.finished.append(True)
        return text

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Spinning:
        monkeypatch.setattr(markdown, "_parser", lambda: self)
        return self

    def assert_stopped(self) -> None:
        """Every render that began was stopped, and its thread ended (one that never began
        was cancelled before it ran)."""
        for thread in self.ran_on:
            thread.join(timeout=60)
            assert not thread.is_alive()
        assert self.finished == []
