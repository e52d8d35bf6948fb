"""Whether a ticket kept each promise, read from its evaluated SLA (never re-computed here).

Per ticket and metric the outcome is ``met``, ``breached``, ``open`` (not decided yet) or
``none`` (no target for it):

- first response and resolution: the metric's state (``met``/``breached``; running or paused is
  open).
- update and next reply: breached if any of the metric's cycles' breach checkpoint fired; met
  once the last cycle ended without one (the ticket was resolved; for next reply, also
  answered); open while a cycle runs.
- escalation: breached if an ``after`` escalation checkpoint fired (its deadline passed with the
  ticket below that tier and unresolved); met once the ticket is resolved or at the highest tier
  its target escalates to; open otherwise. Escalations on breach or on request are consequences,
  not promises of their own, and are not counted.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from scheduler.clock import State
from scheduler.sla import Checkpoint, Kind, MetricSla, TicketSla
from shared.policy import Policy
from worker.report.tickets import DONE

METRICS = ("first_response", "update", "next_reply", "escalation", "resolution")
_AFTER_ESCALATION = re.compile(r"^escalation:tier\d+$")


class Outcome(StrEnum):
    MET = "met"
    BREACHED = "breached"
    OPEN = "open"
    NONE = "none"


def outcomes(policy: Policy, sla: TicketSla) -> dict[str, Outcome]:
    return {
        "first_response": _from_state(sla.metrics["first_response"]),
        "update": _cycles(sla, "update"),
        "next_reply": _cycles(sla, "next_reply"),
        "escalation": _escalation(policy, sla),
        "resolution": _from_state(sla.metrics["resolution"]),
    }


def breach_instants(sla: TicketSla) -> dict[str, datetime]:
    """Per metric, the first instant a promise of the ticket was broken (fired breaches only)."""
    out: dict[str, datetime] = {}
    for checkpoint in sla.checkpoints:
        metric = _breach_metric(checkpoint)
        if metric is not None and checkpoint.fired and metric not in out:
            out[metric] = checkpoint.due_at
    return out


def _breach_metric(checkpoint: Checkpoint) -> str | None:
    if checkpoint.kind is Kind.BREACH:
        return checkpoint.metric
    if checkpoint.kind is Kind.ESCALATION and _AFTER_ESCALATION.match(checkpoint.key):
        return "escalation"
    return None


def _from_state(metric: MetricSla) -> Outcome:
    match metric.state:
        case State.MET:
            return Outcome.MET
        case State.BREACHED:
            return Outcome.BREACHED
        case State.RUNNING | State.PAUSED:
            return Outcome.OPEN
    return Outcome.NONE


def _cycles(sla: TicketSla, metric: str) -> Outcome:
    """A metric measured in cycles: one late cycle breaks the promise for the ticket."""
    if any(c.metric == metric and c.kind is Kind.BREACH and c.fired for c in sla.checkpoints):
        return Outcome.BREACHED
    return _from_state(sla.metrics[metric])


def _escalation(policy: Policy, sla: TicketSla) -> Outcome:
    target = None if sla.target is None else policy.targets[sla.target]
    tiers = [e.tier for e in target.escalations if e.after is not None] if target else []
    if not tiers:
        return Outcome.NONE
    fired = (
        c.fired and c.kind is Kind.ESCALATION and _AFTER_ESCALATION.match(c.key)
        for c in sla.checkpoints
    )
    if any(fired):
        return Outcome.BREACHED
    if sla.status in DONE or sla.tier >= max(tiers):
        return Outcome.MET
    return Outcome.OPEN
