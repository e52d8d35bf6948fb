"""Where notification tests start: a desk with their routes, and P1 tickets whose first response ran out.

The soporte-completo preset (Spanish messages) gets the test's channels and routes appended. A P1
ticket created at `START` must be answered in 30 working minutes (Monday 2 March 2026, 09:00 in
Mexico City), so its 75 % and 90 % warnings and its breach are all due by `BREACH_AT`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.config import settings
from tests.integration.services import apply_now
from tests.support import event
from worker.notify.fire import FireResult, fire_checkpoints
from worker.runtime import runtime

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
BREACH_AT = START + timedelta(minutes=30)


def add_routes(policy_dir: Path, routes: str) -> None:
    """Append ``routes`` (YAML: channels, routes...) to the preset; the runtime reloads it."""
    preset = policy_dir / "soporte-completo.yaml"
    preset.write_text(preset.read_text() + routes)
    settings.cache_clear()
    runtime.cache_clear()


def fire_due(now: datetime = BREACH_AT) -> FireResult:
    """Claim every checkpoint due by ``now`` and fire it, as a fire task would."""
    rt = runtime()
    ids = rt.timers.claim(now)
    with rt.sessions.begin() as session:
        return fire_checkpoints(session, rt.policies, ids, now)


def fire_breach(ticket: str = "P-1", **created: Any) -> FireResult:
    """A P1 ticket created at `START`, its warnings and breach fired at `BREACH_AT`."""
    apply_now(event("created", START, ticket, priority="P1", **created))
    return fire_due()
