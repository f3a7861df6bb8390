"""Field-map alerts reach the servers' alerts channels: a changed live schema, and crun refusing
one mode again and again (the members are told what crun said)."""

from __future__ import annotations

import pytest

from tests.fakes.crun_server import DEFAULT_SCHEMA_FIELDS
from tests.fakes.discord_fake import FakeMember
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(60)

PROMPT = "a velvet heron asleep on a copper roof"


async def test_a_changed_schema_is_posted_to_the_alerts_channel_once(wan: WanWorld) -> None:
    bot = wan.bot()
    async with wan.fake.running(bot):
        alerts = await wan.set_alerts_channel()
        wan.crun.schema_fields = [f for f in DEFAULT_SCHEMA_FIELDS if f != "seed"]
        await bot.runtime.schema_watch.refresh()
        await bot.runtime.schema_watch.refresh()  # the same map again: nothing new to say
        await wan.fake.wait_message(alerts, lambda m: "schema" in m.content, timeout=10)
        await wan.fake.wait_bot_idle()
    posted = [m for m in wan.fake.messages[alerts] if "field map" in m.content]
    assert len(posted) == 1
    assert "seed" in posted[0].content
    assert posted[0].allowed_mentions == {"parse": []}


async def test_repeated_refusals_tell_each_member_and_the_admins_once(wan: WanWorld) -> None:
    said = "seed must be between 0 and 2147483647"
    wan.crun.fail("create", 422, message=said, times=3)
    async with wan.fake.running(wan.bot()):
        alerts = await wan.set_alerts_channel()
        members: list[FakeMember] = [wan.alice, wan.bob, wan.mod]
        for member in members:
            handle = await wan.imagine(PROMPT, user=member)
            await handle.wait_original_edit(
                predicate=lambda m: bool(m.embeds) and "Could not" in m.embeds[0]["title"],
                timeout=15,
            )
            assert handle.original is not None
            told = handle.original.embeds[0]["description"]
            assert "rejected the `seed` setting" in told
            assert said in told
        await wan.fake.wait_message(alerts, lambda m: "422" in m.content, timeout=10)
        await wan.fake.wait_bot_idle()
    posted = [m for m in wan.fake.messages[alerts] if "422" in m.content]
    assert len(posted) == 1
    assert "`seed`" in posted[0].content
    assert said in posted[0].content
    assert "wanbot check --probe" in posted[0].content
    assert PROMPT not in posted[0].content
    assert wan.crun.api_key not in posted[0].content
