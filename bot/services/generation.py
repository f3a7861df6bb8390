"""What the Discord faces call to make images: the server's rules for a request, input checks,
submitting, and the follow-up jobs of a result (reroll, upscale, vary, edit).

Discord-free: it works on user ids and job ids, so it is tested without Discord. Requests arrive
validated (the edge validates for instant feedback; the engine validates again as the guard).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Awaitable, Callable, Sequence

from bot.domain.config import BOT_WIDE, GuildConfig
from bot.domain.models import (
    GenerationRequest,
    ImageRef,
    ImageSource,
    Job,
    Mode,
    Resolution,
    Target,
)
from bot.domain.quota import CostTable
from bot.domain.text import t
from bot.domain.validation import SEED_MAX, upscale_refusal
from bot.errors import InvalidInput
from bot.jobs.engine import JobEngine
from bot.store.guild_config import GuildConfigRepository
from bot.store.jobs import JobRepository
from bot.store.quotas import Charge
from bot.wan.contract import Concept

Estimator = Callable[[GenerationRequest], Awaitable[float | None]]


def no_such_job(job_id: str) -> InvalidInput:
    """One answer for an unknown id and for a job the asker may not see: existence stays hidden."""
    return InvalidInput(
        t("There is no job `{job_id}`. Check the id in the footer.", job_id=job_id[:32])
    )


class GenerationService:
    def __init__(
        self,
        engine: JobEngine,
        jobs: JobRepository,
        configs: GuildConfigRepository,
        *,
        allow_dms: bool = True,
        costs: CostTable | None = None,
        estimator: Estimator | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self._jobs = jobs
        self._configs = configs
        self.allow_dms_default = allow_dms  # ALLOW_DMS: what applies while no owner chose
        self.costs = costs or CostTable()
        self.estimator = estimator
        self._rng = rng or random.SystemRandom()

    async def rules(self, guild_id: int | None) -> GuildConfig:
        """The rules for a request: its server's, or the bot-wide ones (guild 0) in DMs."""
        return await self._configs.get(BOT_WIDE if guild_id is None else guild_id)

    async def cost(self, request: GenerationRequest) -> float:
        """crun's own estimate when it answers, the local table otherwise."""
        if self.estimator is not None:
            estimate = await self.estimator(request)
            if estimate is not None:
                return estimate
        return self.costs.cost(request)

    def new_seed(self) -> int:
        return self._rng.randint(0, SEED_MAX)

    def check(self, request: GenerationRequest) -> None:
        """Refuse now (InvalidInput) what crun's live schema cannot take: nothing is spent."""
        self._engine.contract.check(request)

    async def submit(
        self,
        request: GenerationRequest,
        *,
        user_id: int,
        guild_id: int | None,
        target: Target,
        parent_job_id: str | None = None,
        role_ids: Sequence[int] = (),
    ) -> Job:
        """Every job gets a concrete seed, so Info can show it and Upscale can reuse it (when
        crun's schema has a seed field at all)."""
        if request.seed is None and self._engine.contract.supports(Concept.SEED):
            request = request.with_seed(self.new_seed())
        charge = Charge(await self.cost(request), tuple(role_ids))
        return await self._engine.submit(
            request,
            user_id=user_id,
            guild_id=guild_id,
            target=target,
            parent_job_id=parent_job_id,
            charge=charge,
        )

    async def get(self, job_id: str) -> Job:
        job = await self._jobs.get(job_id.strip().lower())
        if job is None:
            raise no_such_job(job_id)
        return job

    # --- follow-ups from a result's buttons ------------------------------------------------------

    def reroll(self, job: Job) -> GenerationRequest:
        """The same request with a fresh seed.

        Inputs already uploaded to crun are reused by their crun URL: the Discord attachment
        URLs the first run used expire after about a day.
        """
        request = job.request.with_seed(self.new_seed())
        if job.uploaded_urls and len(job.uploaded_urls) == len(request.images):
            images = tuple(
                ImageRef(ImageSource.URL, url, name=ref.name)
                for ref, url in zip(request.images, job.uploaded_urls, strict=True)
            )
            request = dataclasses.replace(request, images=images)
        return request

    def upscale(self, job: Job) -> GenerationRequest:
        """Re-render at 4K with the same prompt and seed (plain text-to-image only)."""
        refusal = upscale_refusal(job.request)
        if refusal is not None:
            raise InvalidInput(refusal)
        return dataclasses.replace(job.request, resolution=Resolution.R4K)

    def vary(self, job: Job, image_url: str, index: int) -> GenerationRequest:
        """A variation of one result image: same prompt and style, that image as reference, new
        seed."""
        varied = self.edit(job, image_url, index, job.request.prompt)
        return dataclasses.replace(varied, style=job.request.style)

    def edit(self, job: Job, image_url: str, index: int, prompt: str) -> GenerationRequest:
        """Edit one result image with a new instruction; the result becomes the reference."""
        return GenerationRequest(
            prompt=prompt,
            mode=Mode.EDIT,
            images=(ImageRef(ImageSource.UPLOAD_URL, image_url, name=f"image {index}"),),
            resolution=_edit_resolution(job.request.resolution),
            n=1,
            seed=self.new_seed(),
            watermark=job.request.watermark,
        )


def _edit_resolution(resolution: Resolution | None) -> Resolution | None:
    # Edits render at 2K at most.
    return Resolution.R2K if resolution is Resolution.R4K else resolution
