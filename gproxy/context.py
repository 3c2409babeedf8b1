"""What every connection handler shares: the clock, logs, process counters.

The clock goes through this one object (DESIGN.md rule 10) so that unit
tests of the layers above can replace it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from gproxy.config.model import Tune
from gproxy.events import EventBus
from gproxy.runtime import ProcessState


@dataclass
class Clock:
    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic


@dataclass
class ProxyContext:
    bus: EventBus
    process: ProcessState
    tune: Tune
    clock: Clock = field(default_factory=Clock)
