"""Replays every recorded TaskInfo envelope (tests/fixtures/crun/taskinfo) through the real client.

FakeCrun answers TaskInfo with the fixture byte for byte, so the whole path runs: HTTP, the
envelope, then ``parse_task_info``. A failed task's reason comes from ``result.message``, then
``data.message``, and never from the envelope's "success".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.wan.client import WanClient
from bot.wan.types import TaskInfo
from tests.fakes.crun_server import FakeCrun
from tests.fakes.crun_shapes import TASKINFO_NAMES, load_taskinfo


@pytest.fixture
async def crun() -> AsyncIterator[FakeCrun]:
    async with FakeCrun(task_latency=None) as fake:
        yield fake


def observed(info: TaskInfo, key: str) -> Any:
    """A TaskInfo attribute in the fixture's JSON terms (enum as its value, tuples as lists)."""
    value = getattr(info, key)
    if key == "status":
        return value.value
    return list(value) if isinstance(value, tuple) else value


def test_the_corpus_covers_every_reply_the_issue_names() -> None:
    assert set(TASKINFO_NAMES) >= {
        "success",
        "failed_result_message",
        "failed_data_message",
        "failed_no_reason",
        "pending",
        "running",
        "unknown_status",
    }


@pytest.mark.parametrize("name", TASKINFO_NAMES)
async def test_the_client_reads_each_recorded_reply_as_expected(crun: FakeCrun, name: str) -> None:
    case = load_taskinfo(name)
    task_id = case.reply["data"]["task_id"]
    crun.set_info_reply(task_id, case.reply)
    async with WanClient(crun.api_key, base_url=crun.base_url, get_retries=0) as client:
        info = await client.task_info(task_id)

    assert crun.calls["info"] == 1
    assert info.task_id == task_id
    assert {key: observed(info, key) for key in case.expect} == case.expect


async def test_a_recorded_reply_is_only_served_for_its_own_task(crun: FakeCrun) -> None:
    crun.set_info_reply("task_recorded", load_taskinfo("success").reply)
    async with WanClient(crun.api_key, base_url=crun.base_url, get_retries=0) as client:
        task_id = await client.create_task({"prompt": "a lighthouse"})
        info = await client.task_info(task_id)
    assert (info.task_id, info.status.value) == (task_id, "pending")
