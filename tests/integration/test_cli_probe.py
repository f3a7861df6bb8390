"""`wanbot check`, `check --probe` and `check --probe --spend`, run as the real process against the
fake crun serving (and strictly enforcing) the replayed crun schema shapes."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.fakes.crun_server import FakeCrun
from tests.fakes.crun_shapes import SHAPE_NAMES, load_shape
from tests.processes import cli_env, start

pytestmark = pytest.mark.process  # runs the real `wanbot` process

MODES = ("text-to-image", "edit", "image-set")
# Shapes the bot reads without help; the others need the WAN_FIELD_MAP their fixture names.
UNAIDED = tuple(name for name in SHAPE_NAMES if load_shape(name).override is None)
HEADER = re.compile(r"^probe (\S+) \(.*\): the `input` the bot would send$")


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def lines_starting(self, prefix: str) -> list[str]:
        return [line for line in self.out.splitlines() if line.startswith(prefix)]


async def wanbot(env: dict[str, str], cwd: Path, *args: str, wait: float = 60) -> Result:
    proc = await start(env, cwd, *args)
    out, err = await asyncio.wait_for(proc.communicate(), wait)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@asynccontextmanager
async def shaped(name: str) -> AsyncIterator[FakeCrun]:
    async with FakeCrun(shape=name) as crun:
        yield crun


def printed_inputs(out: str) -> dict[str, dict[str, Any]]:
    """mode -> the `input` JSON the probe printed under its header (indented lines)."""
    found: dict[str, dict[str, Any]] = {}
    lines = out.splitlines()
    for i, line in enumerate(lines):
        m = HEADER.match(line)
        if m is None:
            continue
        block = []
        for follow in lines[i + 1 :]:
            if not follow.startswith(" "):
                break
            block.append(follow.strip())
        found[m.group(1)] = json.loads("".join(block))
    return found


def estimated_inputs(crun: FakeCrun) -> list[dict[str, Any]]:
    return [body["input"] for body in crun.requests_for("estimate")]


def assert_clean(r: Result, crun: FakeCrun) -> None:
    assert "Traceback" not in r.err
    assert crun.api_key not in r.out + r.err


@pytest.mark.parametrize("shape", UNAIDED)
async def test_probe_passes_and_prints_what_it_sent(shape: str, tmp_path: Path) -> None:
    async with shaped(shape) as crun:
        r = await wanbot(cli_env(crun, tmp_path), tmp_path, "check", "--probe")
    assert r.code == 0, r.out + r.err
    printed = printed_inputs(r.out)
    assert list(printed) == list(MODES)
    # What it printed is exactly what crun was asked, and the strict shape takes all of it.
    assert estimated_inputs(crun) == list(printed.values())
    for inp in printed.values():
        assert crun.shape is not None and crun.shape.validate(inp) is None
    for mode in MODES:
        assert f"[ok] probe {mode}: accepted: estimated " in r.out
    assert "[ok] probe: all 3 modes accepted" in r.out
    assert crun.calls["create"] == 0  # a probe never creates (or pays for) a task
    assert len(crun.uploads) == 1  # the edit's one test image
    assert_clean(r, crun)


async def test_probe_sends_the_nested_parameters_object(tmp_path: Path) -> None:
    async with shaped("nested_parameters") as crun:
        r = await wanbot(cli_env(crun, tmp_path), tmp_path, "check", "--probe")
    assert r.code == 0, r.out + r.err
    printed = printed_inputs(r.out)
    t2i, edit, image_set = (printed[m] for m in MODES)
    for inp in (t2i, edit, image_set):
        assert set(inp) <= {"prompt", "images", "parameters"}
        assert inp["parameters"]["size"] == "1K"
    assert t2i["parameters"]["n"] == edit["parameters"]["n"] == 1
    assert image_set["parameters"]["n"] == 2
    assert image_set["parameters"]["enable_sequential"] is True
    (uploaded,) = crun.uploads
    assert len(edit["images"]) == 1 and uploaded in edit["images"][0]
    with Image.open(io.BytesIO(crun.uploads[uploaded])) as im:
        assert im.format == "PNG" and im.size == (256, 256)
    # The estimates on the terminal are crun's own answers, not figures of the bot's.
    per_image = crun.credits_per_image
    assert f"[ok] probe image-set: accepted: estimated {2 * per_image:g} credits" in r.out
    assert crun.calls["create"] == 0


async def test_check_alone_prints_the_field_map_and_asks_crun_for_no_estimate(
    tmp_path: Path,
) -> None:
    async with shaped("nested_parameters") as crun:
        r = await wanbot(cli_env(crun, tmp_path), tmp_path, "check")
    assert r.code == 0, r.out + r.err
    assert "field map in force" in r.out
    assert re.search(r"^ +resolution +-> parameters\.size", r.out, re.M)
    assert "[note] schema: n: expected 'n', live schema has 'parameters.n'" in r.out
    assert crun.calls["estimate"] == 0 and crun.calls["create"] == 0


async def test_unknown_image_field_fails_check_and_names_the_override(tmp_path: Path) -> None:
    async with shaped("unknown_image_field") as crun:
        env = cli_env(crun, tmp_path)
        r = await wanbot(env, tmp_path, "check")
        probe = await wanbot(env, tmp_path, "check", "--probe")
    assert r.code == 1
    (problem,) = r.lines_starting("[FAIL] schema: images")
    assert "'refs'" in problem
    assert """WAN_FIELD_MAP='{"images": "refs"}'""" in problem
    assert "[warn] schema: palette" in r.out  # an option lost warns, it does not fail
    assert probe.code == 1
    assert "[FAIL] probe edit: not available" in probe.out
    assert list(printed_inputs(probe.out)) == ["text-to-image", "image-set"]
    assert crun.calls["upload_url"] == 0  # nothing uploaded for a mode that cannot be sent
    assert crun.calls["estimate"] == 2 and crun.calls["create"] == 0
    assert_clean(probe, crun)


async def test_the_suggested_override_makes_unknown_image_field_pass(tmp_path: Path) -> None:
    async with shaped("unknown_image_field") as crun:
        assert crun.shape is not None and crun.shape.override is not None
        override = json.dumps(crun.shape.override)
        env = cli_env(crun, tmp_path, WAN_FIELD_MAP=override)
        r = await wanbot(env, tmp_path, "check")
        probe = await wanbot(env, tmp_path, "check", "--probe")
    assert r.code == 0, r.out
    assert "[note] WAN_FIELD_MAP: " in r.out and "wins over the live schema" in r.out
    assert probe.code == 0, probe.out
    edit = printed_inputs(probe.out)["edit"]
    assert len(edit["refs"]) == 1
    assert crun.calls["estimate"] == 3 and crun.calls["create"] == 0


async def test_a_field_crun_refuses_is_named_with_crun_s_message(tmp_path: Path) -> None:
    """An override to a field the live service does not take: the schema check says so, and
    EstimateTask's 422 is shown verbatim with the field and the setting that fixes it."""
    async with shaped("builtin") as crun:
        env = cli_env(crun, tmp_path, WAN_FIELD_MAP='{"images": "images"}')
        r = await wanbot(env, tmp_path, "check", "--probe")
    assert r.code == 1
    assert (
        "[FAIL] schema: images: 'images' from WAN_FIELD_MAP (the live schema does not list" in r.out
    )
    (refused,) = r.lines_starting("[FAIL] probe edit")
    assert "refused by crun (code 422): unknown input field 'images'" in refused
    assert "field named: 'images'" in r.out
    assert "hint: " in r.out and 'WAN_FIELD_MAP=\'{"images": ' in r.out
    assert crun.calls["create"] == 0


async def test_a_422_from_estimate_shows_the_message_and_the_field(
    crun: FakeCrun, tmp_path: Path
) -> None:
    message = "input.resolution: '1K' is not one of ['1k', '2k', '4k']"
    crun.fail("estimate", 422, message=message)  # the first probe, text-to-image
    r = await wanbot(cli_env(crun, tmp_path), tmp_path, "check", "--probe")
    assert r.code == 1
    (refused,) = r.lines_starting("[FAIL] probe text-to-image")
    assert f"refused by crun (code 422): {message}" in refused
    assert "field named: 'resolution' (the bot sends its resolution there)" in r.out
    assert """WAN_FIELD_MAP='{"resolution": """ in r.out
    assert "[ok] probe edit: accepted" in r.out  # the other modes are still asked
    assert "1 of 3 modes refused or not available (text-to-image)" in r.out
    assert crun.calls["create"] == 0


async def test_an_unaffordable_estimate_fails_the_probe(crun: FakeCrun, tmp_path: Path) -> None:
    crun.balance = crun.credits_per_image / 2
    r = await wanbot(cli_env(crun, tmp_path), tmp_path, "check", "--probe")
    assert r.code == 1
    assert "[FAIL] probe text-to-image: accepted, but not affordable" in r.out
    assert crun.calls["create"] == 0


async def test_spend_makes_exactly_one_image(tmp_path: Path) -> None:
    async with shaped("nested_parameters") as crun:
        crun.image_size = (96, 80)
        env = cli_env(crun, tmp_path)
        r = await wanbot(env, tmp_path, "check", "--probe", "--spend", "--out", "imgs")
    assert r.code == 0, r.out + r.err
    assert crun.calls["create"] == 1
    (task,) = crun.tasks.values()
    assert task.input == printed_inputs(r.out)["text-to-image"]  # the probed request, made
    files = list((tmp_path / "imgs").glob("*.png"))
    assert len(files) == 1
    with Image.open(files[0]) as im:
        assert im.size == (96, 80)
    (done,) = r.lines_starting("[ok] spend: ")
    assert str(files[0]) in done
    assert f"crun charged {task.cost:g} credits" in done
    assert_clean(r, crun)


async def test_spend_is_refused_when_a_probe_fails(tmp_path: Path) -> None:
    async with shaped("unknown_image_field") as crun:
        r = await wanbot(cli_env(crun, tmp_path), tmp_path, "check", "--probe", "--spend")
    assert r.code == 1
    assert "[FAIL] spend: not done" in r.out
    assert crun.calls["create"] == 0
    assert not (tmp_path / "out").exists()


async def test_spend_without_probe_is_a_usage_error(crun: FakeCrun, tmp_path: Path) -> None:
    r = await wanbot(cli_env(crun, tmp_path), tmp_path, "check", "--spend")
    assert r.code == 64
    assert "--spend needs --probe" in r.err
    assert sum(crun.calls.values()) == 0


async def test_plain_http_base_without_allow_http_results(crun: FakeCrun, tmp_path: Path) -> None:
    """The fake's base is http: its result links would be refused, so nothing is made."""
    env = cli_env(crun, tmp_path, ALLOW_HTTP_RESULTS="false")
    r = await wanbot(env, tmp_path, "check")
    assert r.code == 1
    (line,) = r.lines_starting("[FAIL] WAN_API_BASE: plain http")
    assert "ALLOW_HTTP_RESULTS=true" in line
    assert r.out.index("WAN_API_BASE") < r.out.index("[ok] API key")  # said at once

    before = sum(crun.calls.values())
    gen = await wanbot(env, tmp_path, "generate", "a lighthouse at dusk", wait=30)
    assert gen.code == 1
    assert "WAN_API_BASE is plain http" in gen.err and "ALLOW_HTTP_RESULTS=true" in gen.err
    assert "Nothing was sent to crun" in gen.err
    assert sum(crun.calls.values()) == before  # generate sent nothing at all

    spend = await wanbot(env, tmp_path, "check", "--probe", "--spend")
    assert spend.code == 1
    assert "[FAIL] spend: not done: WAN_API_BASE is plain http" in spend.out
    assert crun.calls["create"] == 0
    assert_clean(spend, crun)

    before = sum(crun.calls.values())
    for command in (("run",), ("jobs", "resume")):
        r = await wanbot(env, tmp_path, *command, wait=30)
        assert r.code == 2, command  # a configuration to fix
        assert "WAN_API_BASE is plain http" in r.err and "ALLOW_HTTP_RESULTS=true" in r.err
    assert sum(crun.calls.values()) == before


async def test_an_unknown_concept_in_wan_field_map_is_a_failed_line(
    crun: FakeCrun, tmp_path: Path
) -> None:
    env = cli_env(crun, tmp_path, WAN_FIELD_MAP='{"imgs": "refs"}')
    r = await wanbot(env, tmp_path, "check")
    assert r.code == 2  # a configuration error, as for every other command
    (line,) = r.lines_starting("[FAIL] WAN_FIELD_MAP: ")
    assert "unknown concept 'imgs'" in line and "images" in line
    assert "[ok] API key" in r.out  # the rest is still checked
    assert "field map in force" in r.out
    assert_clean(r, crun)


async def test_malformed_wan_field_map_is_a_failed_line(crun: FakeCrun, tmp_path: Path) -> None:
    env = cli_env(crun, tmp_path, WAN_FIELD_MAP="images=refs")
    r = await wanbot(env, tmp_path, "check")
    assert r.code == 2
    (line,) = r.lines_starting("[FAIL] settings: ")
    assert "WAN_FIELD_MAP" in line
    assert "WAN_FIELD_MAP" in r.err
    assert sum(crun.calls.values()) == 0
