"""``wanbot check --probe``: one request per mode, built exactly as the bot builds it, put to crun's
EstimateTask (which spends nothing); ``--spend`` then makes one real image the way ``wanbot
generate`` does.

The schema says which names exist; only crun's answer to a real ``input`` proves that the bot
spells them the way crun takes them (wan-api.md 2.5). CreateTask is never called without
``--spend``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from bot.cli.args import EXIT_OK
from bot.cli.generating import run_one
from bot.cli.reach import http_base_problem
from bot.cli.report import Report, api_problem
from bot.domain.models import GenerationRequest, ImageRef, ImageSource, Mode, Resolution
from bot.domain.validation import validate_request
from bot.errors import InvalidInput, WanApiError
from bot.runtime import Runtime
from bot.settings import Settings
from bot.wan.client import WanClient
from bot.wan.contract import Concept, Contract
from bot.wan.types import Estimate

__all__ = ["SPEND_OUT", "SPEND_TIMEOUT", "ProbeOutcome", "probe_modes", "spend_one"]

PROMPT = "A red apple on a white table, soft daylight"
EDIT_PROMPT = "Make the square in this picture blue"
IMAGE_SIDE = 256  # small: crun's lower limit is 240 px a side (wan-api.md 2.2)
SPEND_OUT = "out"  # as `wanbot generate`: the image is worth keeping where it is easy to find
SPEND_TIMEOUT = 600.0  # seconds; after that the job stays saved for `wanbot jobs resume`
_PLACEHOLDER = ImageRef(ImageSource.URL, "https://example.invalid/probe.png", name="probe.png")


@dataclass(frozen=True)
class ProbeOutcome:
    accepted: bool  # every mode accepted and affordable
    request: GenerationRequest  # the text-to-image probe, which --spend makes for real
    credits: float | None  # crun's estimate for it


def probe_requests() -> list[GenerationRequest]:
    """Text-to-image, an edit of one image (uploaded later) and an image set, each at 1K."""
    one_k = Resolution.R1K
    return [
        GenerationRequest(PROMPT, Mode.TEXT_TO_IMAGE, resolution=one_k, n=1),
        GenerationRequest(EDIT_PROMPT, Mode.EDIT, images=(_PLACEHOLDER,), resolution=one_k, n=1),
        GenerationRequest(PROMPT, Mode.IMAGE_SET, resolution=one_k, n=2),
    ]


async def probe_modes(runtime: Runtime, report: Report) -> ProbeOutcome:
    print("probe: one request per mode to crun's EstimateTask (nothing is created or charged)")
    requests = probe_requests()
    verdicts = [await _probe(runtime, report, request) for request in requests]
    failed = [r.mode.value for r, v in zip(requests, verdicts, strict=True) if v is None]
    if failed:
        report.fail(
            "probe",
            f"{len(failed)} of {len(requests)} modes refused or not available "
            f"({', '.join(failed)}); nothing was created or charged",
        )
    else:
        report.ok("probe", f"all {len(requests)} modes accepted; nothing was created or charged")
    first = verdicts[0]
    return ProbeOutcome(not failed, requests[0], first.credits if first else None)


async def _probe(runtime: Runtime, report: Report, request: GenerationRequest) -> Estimate | None:
    """crun's estimate for ``request``, or None after reporting why there is none."""
    what = f"probe {request.mode.value}"
    try:
        validate_request(request)
        runtime.contract.check(request)  # what the field map cannot express is refused here
    except InvalidInput as exc:
        reason = exc.user_message + (f" ({exc.detail})" if exc.detail != exc.user_message else "")
        report.fail(what, f"not available: {reason}")
        report.more("fix: the field map in force has no field for it: see the schema lines above")
        return None
    if request.images:
        try:
            url = await _upload_test_image(runtime.client)
        except WanApiError as exc:
            report.fail(what, f"could not upload the test image: {api_problem(exc)}")
            return None
        request = dataclasses.replace(request, images=(ImageRef(ImageSource.URL, url),))
    payload = runtime.contract.build_input(request, [ref.location for ref in request.images])
    size = f"{request.resolution}, n={request.n}" + (", 1 input image" if request.images else "")
    print(f"probe {request.mode.value} ({size}): the `input` the bot would send")
    report.more(json.dumps(payload, indent=2, ensure_ascii=False))
    try:
        estimate = await runtime.client.estimate(payload)
    except WanApiError as exc:
        _refused(report, what, exc, runtime.contract)
        return None
    return _estimated(report, what, estimate)


def _estimated(report: Report, what: str, estimate: Estimate) -> Estimate | None:
    cost = "no estimate given" if estimate.credits is None else f"{estimate.credits:g} credits"
    if estimate.affordable is False:
        balance = "" if estimate.balance is None else f", balance {estimate.balance:g}"
        report.fail(what, f"accepted, but not affordable: {cost}{balance}; top up the account")
        return None
    afford = "affordable" if estimate.affordable else "affordability not reported"
    report.ok(what, f"accepted: estimated {cost} ({afford})")
    return estimate


def _refused(report: Report, what: str, exc: WanApiError, contract: Contract) -> None:
    """crun's code and message, the input field it names, and what to do about it."""
    if exc.status == 0 and exc.code is None:  # no answer at all
        report.fail(what, f"could not ask crun: {exc.message}")
        return
    report.fail(what, f"refused by crun (code {exc.code or exc.status}): {exc.message}")
    field = contract.field_in(exc.message)
    if field is not None:
        concept = _concept_at(field, contract)
        sent = f"the bot sends its {concept.value} there" if concept else "the bot never sends it"
        report.more(f"field named: {field!r} ({sent})")
    report.more("hint: " + _hint(exc, field, contract))


def _hint(exc: WanApiError, field: str | None, contract: Contract) -> str:
    code = exc.code or exc.status
    if code in (401, 402, 404):
        return api_problem(exc)
    concept = _concept_at(field, contract) if field else None
    if concept is not None:
        return (
            f"crun spells or shapes {concept.value!r} differently: run with "
            f'WAN_FIELD_MAP=\'{{"{concept.value}": "<crun\'s field path>"}}\' (or null to '
            "never send it), then `wanbot check --probe` again"
        )
    if field is not None:
        return (
            f"{field!r} is a field the bot does not fill: if it holds one of the bot's concepts, "
            f'map it, e.g. WAN_FIELD_MAP=\'{{"<concept>": "{field}"}}\''
        )
    if code == 422:
        return (
            "crun refused the input but names no field the bot knows: compare the input above "
            "with crun's schema and set WAN_FIELD_MAP"
        )
    return "crun could not answer this now; try again later"


def _concept_at(field: str, contract: Contract) -> Concept | None:
    return next((c for c in Concept if contract.field_name(c) == field), None)


async def _upload_test_image(client: WanClient) -> str:
    png = await asyncio.to_thread(_test_png)
    return await client.upload(png, content_type="image/png", ext=".png")


def _test_png() -> bytes:
    """A 256x256 grey picture with a square in it: something an edit can act on."""
    image = Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE), (225, 225, 225))
    ImageDraw.Draw(image).rectangle((64, 64, 191, 191), fill=(200, 40, 40))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


# --- --spend ---------------------------------------------------------------------------------


async def spend_one(
    settings: Settings,
    report: Report,
    outcome: ProbeOutcome | None,
    *,
    out: str | None,
    timeout: float | None,  # noqa: ASYNC109 - the job stays saved when waiting stops
) -> None:
    """One 1K text-to-image image through `wanbot generate`'s path, only when all else passed."""
    http_problem = http_base_problem(settings)
    if http_problem is not None:
        report.fail("spend", f"not done: WAN_API_BASE is {http_problem}. Nothing was created")
        return
    if outcome is None or not outcome.accepted or report.failed:
        report.fail("spend", "not done: a check or probe above failed; nothing was created")
        return
    cost = "no estimate" if outcome.credits is None else f"estimated {outcome.credits:g} credits"
    report.note("spend", f"one 1K text-to-image image, {cost}; making it now (billed)")
    out_dir = await asyncio.to_thread(lambda: Path(out or SPEND_OUT).expanduser().resolve())
    wait = SPEND_TIMEOUT if timeout is None else timeout
    code, job = await run_one(settings, outcome.request, out_dir, wait, show_files=False)
    files = (job.receipt or {}).get("files", []) if job is not None else []
    if code != EXIT_OK or job is None or not files:
        report.fail("spend", "no image was saved (see the messages above)")
        return
    charged = (
        f"crun charged {job.credits:g} credits"
        if job.credits is not None
        else "crun did not report the credits charged"
    )
    report.ok("spend", f"image saved to {', '.join(files)}; {charged} (job {job.id})")
