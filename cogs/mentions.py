"""Reply to a message that has images, mention the bot with an instruction: those images are edited.

Works without the privileged message-content intent: Discord shows a bot the text of messages
that mention it.
"""

from __future__ import annotations

import discord
from discord.ext import commands

from bot.jobs.background import TaskGroup
from bot.services import Services
from bot.ui import message_flow


class MentionsCog(commands.Cog):
    def __init__(self, services: Services) -> None:
        self.services = services
        self.tasks = TaskGroup("mentions")  # error replies waiting to delete themselves

    async def cog_unload(self) -> None:
        await self.tasks.cancel_all()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me_id = message_flow.my_id(message)
        if me_id is None or not message_flow.is_edit_request(message, me_id):
            return
        await message_flow.start_from_message(message, self.services, me_id, tasks=self.tasks)
