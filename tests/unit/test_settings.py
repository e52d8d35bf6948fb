"""Settings refuse a configuration that cannot work, naming the variables at fault."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.config import Settings


def test_one_queue_for_events_and_fire_tasks_is_refused() -> None:
    # the appliers would hand every fire task back to the queue they take it from, forever
    with pytest.raises(ValidationError, match="ESCALERA_EVENTS_QUEUE and ESCALERA_FIRE_QUEUE"):
        Settings(events_queue="escalera", fire_queue="escalera")


def test_the_default_queues_are_apart() -> None:
    assert Settings().events_queue != Settings().fire_queue
