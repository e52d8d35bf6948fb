"""The write-back channel: a note on the ticket in its own portal, through the same delivery.

A channel URL ``portal://`` (``ESCALERA_CHANNEL_PORTAL=portal://``) is not sent anywhere by
Apprise: the message becomes an internal note on the ticket it is about, in the portal it came
from (Zendesk, Jira or Freshdesk, `worker.portals.notes`), signed in with the credentials the
integration settings name. A breach note adds the portal's ``breach_tag`` (``sla_breached``),
an escalation note its ``escalation_tag`` (``escalated_tier2``), so agents can build views and
automations on them. Every other URL goes to the sender it wraps (Apprise).

The note goes through the deliverer like any page: its tries, backoff, dead letter and fallback
are the route's, and its dedupe key is in the note, so a retried try finds the note written and
writes no second one (`worker.portals.notes`). A storm never turns notes into a digest: each
ticket gets its own note (`worker.notify.storm`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import structlog

from shared.errors import EscaleraError
from shared.integrations import Integrations, Portal
from worker.notify.messages import Message, MessageFacts
from worker.notify.transport import Sender, scheme
from worker.portals.access import portal_api
from worker.portals.http import PortalError
from worker.portals.notes import WRITERS, Note, NoteWriter

SCHEME = "portal"  # portal:// : the ticket's own portal
TIMEOUT_S = 10.0  # one call to the portal; a slow portal fails the try, which is retried later

log = structlog.get_logger("escalera.notify")


def is_writeback(url: str) -> bool:
    return scheme(url) == SCHEME


def note_for(message: Message, facts: MessageFacts, section: Portal | None) -> Note:
    """The note ``message`` becomes on its ticket, with the tags its kind adds. Pure."""
    tag: str | None = None
    if facts.kind == "breach":
        tag = section.breach_tag if section is not None else Portal().breach_tag
    elif facts.kind == "escalation" and facts.tier is not None:
        template = section.escalation_tag if section is not None else Portal().escalation_tag
        tag = template.replace("{tier}", str(facts.tier)) if template else None
    text = f"{message.title}\n\n{message.body}"
    return Note(facts.ticket_id, text, facts.dedupe_key, (tag,) if tag else ())


@dataclass
class WritebackSender:
    """Writes ``portal://`` targets as notes on the ticket; sends every other through ``inner``."""

    inner: Sender
    integrations: Integrations
    environ: Mapping[str, str]
    sleep: Callable[[float], None] = time.sleep
    _writers: dict[str, NoteWriter] = field(default_factory=dict, init=False, repr=False)

    def send(self, urls: Sequence[str], message: Message, dedupe_key: str) -> list[str | None]:
        others = [url for url in urls if not is_writeback(url)]
        sent = iter(self.inner.send(others, message, dedupe_key) if others else [])
        return [self._write(message) if is_writeback(url) else next(sent) for url in urls]

    def _write(self, message: Message) -> str | None:
        """None if the ticket has the note (written now or before), else why not."""
        facts = message.facts
        if facts is None:
            return f"{SCHEME}: a digest is not written to a ticket"
        source = facts.source
        section = self.integrations.portal(source)
        try:
            writer = self._writer(source, section)
            written = writer.write(note_for(message, facts, section))
        except (EscaleraError, PortalError) as exc:  # names a setting, a variable or a path
            return f"{SCHEME}: {exc}"
        log.info(
            "note_written" if written else "note_already_written",
            source=source,
            ticket_id=facts.ticket_id,
            checkpoint=facts.metric,
            kind=facts.kind,
            dedupe_key=facts.dedupe_key,
        )
        return None

    def _writer(self, source: str, section: Portal | None) -> NoteWriter:
        if source not in self._writers:
            kind = WRITERS.get(source)
            if kind is None:
                raise EscaleraError(
                    f"tickets from {source} have no portal to write to "
                    f"(the write-back knows {', '.join(sorted(WRITERS))})"
                )
            api = portal_api(source, section, self.environ, sleep=self.sleep)
            # one try per call: a portal that asks us to wait fails this try, and the
            # route's backoff tries again, instead of holding a delivery thread
            self._writers[source] = kind(replace(api, timeout_s=TIMEOUT_S, max_tries=1))
        return self._writers[source]
