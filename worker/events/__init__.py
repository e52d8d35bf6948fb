"""Applying ticket events: the queue, its consumer, one transaction per batch, re-arming timers."""
