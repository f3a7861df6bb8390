"""The e2e world (fake Discord + fake crun + the real bot) for the security suite."""

from tests.world import discord_fake, no_leaks, png_bytes, wan

__all__ = ["discord_fake", "no_leaks", "png_bytes", "wan"]
