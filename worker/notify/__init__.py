"""Turning fired checkpoints into messages and delivering them through Apprise."""
