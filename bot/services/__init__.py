"""The one door between the Discord faces (cogs, ``bot/ui``) and the core.

Cogs and ``bot/ui`` call these services and use domain types; they never reach a repository, the
crun client or SQL. ``Services`` is built complete in one place (``Runtime.services``) and never
changed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.admin import AdminService
from bot.services.generation import GenerationService
from bot.services.history import HistoryService
from bot.services.inputs import InputChecker
from bot.services.modlog import ModLogService
from bot.services.preferences import PreferenceService
from bot.services.queue import QueueService
from bot.services.styles import StyleService


@dataclass(frozen=True, slots=True)
class Services:
    generation: GenerationService
    inputs: InputChecker
    admin: AdminService
    queue: QueueService
    modlog: ModLogService
    owner_ids: frozenset[int]  # bot owners: admin in every server
    preferences: PreferenceService
    styles: StyleService
    history: HistoryService


__all__ = [
    "AdminService",
    "GenerationService",
    "HistoryService",
    "InputChecker",
    "ModLogService",
    "PreferenceService",
    "QueueService",
    "Services",
    "StyleService",
]
