"""Recovering missed webhooks: pulling a portal's changes since a time into canonical events."""
