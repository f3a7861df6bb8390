"""Fixtures for end-to-end tests: the real bot against the fake Discord and the fake crun
(tests/world.py)."""

from tests.world import discord_fake, no_leaks, png_bytes, wan

__all__ = ["discord_fake", "no_leaks", "png_bytes", "wan"]
