"""Typed payloads of every command and fact."""
