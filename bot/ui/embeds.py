"""Embeds for every state a job can be in. Text from users is escaped and clipped to Discord's
limits; embeds never ping anyone."""

from __future__ import annotations

import time
from collections.abc import Sequence

import discord

from bot.domain.models import GenerationRequest, Job, JobStatus, Mode, ResultImage
from bot.domain.text import t
from bot.domain.validation import MAX_INPUT_IMAGES, MAX_PROMPT_CHARS, effective_resolution
from bot.i18n.replies import render
from bot.jobs.delivery import Progress, ProgressKind

BRAND = discord.Colour.from_rgb(88, 101, 242)
OK = discord.Colour.green()
WARN = discord.Colour.orange()
FAIL = discord.Colour.red()

PROMPT_PREVIEW = 700  # characters of the prompt shown on result and status embeds

CANCEL_HINT = "Press **Cancel** to take it out of the line; nothing is charged."
AT_CRUN_NOTE = "It is with the image service now and can no longer be stopped."

MODE_TITLES = {
    Mode.TEXT_TO_IMAGE: "Imagine",
    Mode.EDIT: "Edit",
    Mode.IMAGE_SET: "Image set",
}


# The same names as they head a result, in the channel's language (MODE_TITLES stay English for
# the status messages, which are not translated yet).
MODE_NAMES = {
    Mode.TEXT_TO_IMAGE: t("Imagine"),
    Mode.EDIT: t("Edit"),
    Mode.IMAGE_SET: t("Image set"),
}
REQUESTED_BY = t("Requested by")
SEED = t("Seed")
SIZE = t("Size")
TOOK = t("Took")
NOTE = t("Note")
COMPRESSED = t("Some images were compressed to fit this server's upload limit.")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_prompt(prompt: str, limit: int = PROMPT_PREVIEW) -> str:
    """Escaped so prompt markdown cannot restyle or break the embed."""
    escaped = discord.utils.escape_markdown(discord.utils.escape_mentions(prompt))
    return clip(escaped, limit)


def ts(unix: float, style: str = "R") -> str:
    return f"<t:{int(unix)}:{style}>"


def footer(job: Job) -> str:
    """The footer of every message about a job that is not its result (status, done, failure)."""
    return f"job {job.id}"


def result_footer(job: Job, part: int = 1, parts: int = 1) -> str:
    """The footer only a result message carries: crash recovery looks for exactly this text (and
    the part's files), so no status, failure or alert message can be taken for a result."""
    text = f"job {job.id} · result"
    return f"{text} {part}/{parts}" if parts > 1 else text


def _settings_line(job: Job) -> str:
    r = job.request
    bits = [effective_resolution(r).value, f"{r.n} image{'s' if r.n != 1 else ''}"]
    if r.aspect_ratio:
        bits.append(r.aspect_ratio)
    if r.images:
        bits.append(f"{len(r.images)} reference{'s' if len(r.images) != 1 else ''}")
    if r.thinking:
        bits.append("thinking")
    if r.seed is not None:
        bits.append(f"seed {r.seed}")
    return " · ".join(bits)


def preparing_embed(request: GenerationRequest) -> discord.Embed:
    embed = discord.Embed(title=f"{MODE_TITLES[request.mode]}: starting", colour=BRAND)
    embed.description = f"⏳ Checking your request…\n\n> {safe_prompt(request.prompt, 300)}"
    return embed


def status_embed(job: Job, progress: Progress, *, now: float | None = None) -> discord.Embed:
    now = time.time() if now is None else now
    kind = progress.kind
    if kind is ProgressKind.CANCELLED:
        return cancelled_embed(job, progress.cancelled_by)
    title = f"{MODE_TITLES[job.request.mode]}: working on it"
    colour = BRAND
    if kind is ProgressKind.QUEUED:
        title = f"{MODE_TITLES[job.request.mode]}: waiting in line"
        state = waiting_line(progress, now) + "\n" + CANCEL_HINT
    elif kind is ProgressKind.SLOW:
        state = "🐢 Taking longer than usual. You will be pinged when it is done."
        colour = WARN
    else:  # SUBMITTED or RUNNING: crun has it
        state = f"🎨 Rendering, started {ts(job.submitted_at or job.created_at)}"
        if progress.eta and progress.eta > now:
            state += f", ready {ts(progress.eta)}"
        state += "\n" + AT_CRUN_NOTE
    embed = discord.Embed(title=title, colour=colour)
    embed.description = f"{state}\n\n> {safe_prompt(job.request.prompt, 300)}"
    embed.add_field(name="Settings", value=_settings_line(job), inline=False)
    embed.set_footer(text=footer(job))
    return embed


def waiting_line(progress: Progress, now: float) -> str:
    """The waiting state, as far as it is known: "⏳ Waiting in line: #3, should start in 2 min"."""
    line = "⏳ Waiting in line"
    if progress.queue_position:
        line += f": #{progress.queue_position}"
    if progress.eta:
        # An estimate already passed would read "2 seconds ago": it starts at the next free slot.
        line += f", should start {ts(progress.eta)}" if progress.eta > now else ", starting soon"
    return line


def cancelled_embed(job: Job, by: int | None) -> discord.Embed:
    """The final state of a job taken out of the line before crun saw it."""
    embed = discord.Embed(title=f"{MODE_TITLES[job.request.mode]}: cancelled", colour=WARN)
    who = f"Cancelled by <@{by}>" if by is not None else "Cancelled"
    embed.description = f"✖️ {who}; nothing was charged.\n\n> {safe_prompt(job.request.prompt, 300)}"
    embed.set_footer(text=footer(job))
    return embed


def result_embed(
    job: Job,
    images: Sequence[ResultImage],
    *,
    part: int = 1,
    parts: int = 1,
    locale: str | None = None,
) -> discord.Embed:
    """A result message's embed, in ``locale`` (the job's channel language; None: English). The
    footer stays as it is in every language: crash recovery looks for it."""
    title = render(MODE_NAMES[job.request.mode], locale)
    embed = discord.Embed(title=f"{title} ✓", colour=OK)
    embed.description = safe_prompt(job.request.prompt)
    embed.add_field(name=render(REQUESTED_BY, locale), value=f"<@{job.user_id}>", inline=True)
    if job.request.seed is not None:
        embed.add_field(name=render(SEED, locale), value=str(job.request.seed), inline=True)
    if images:
        sizes = sorted({f"{i.width}×{i.height}" for i in images})
        embed.add_field(name=render(SIZE, locale), value=", ".join(sizes), inline=True)
    if job.submitted_at and job.finished_at:
        took = f"{max(0.0, job.finished_at - job.submitted_at):.0f} s"
        embed.add_field(name=render(TOOK, locale), value=took, inline=True)
    if any(i.reencoded for i in images):
        embed.add_field(name=render(NOTE, locale), value=render(COMPRESSED, locale), inline=False)
    embed.set_footer(text=result_footer(job, part, parts))
    return embed


def done_embed(job: Job, jump_url: str | None) -> discord.Embed:
    embed = discord.Embed(title=f"{MODE_TITLES[job.request.mode]}: done", colour=OK)
    where = f"[Jump to the result]({jump_url})" if jump_url else "The result is below."
    embed.description = f"{where}\n\n> {safe_prompt(job.request.prompt, 300)}"
    embed.set_footer(text=footer(job))
    return embed


def failure_embed(job: Job, message: str) -> discord.Embed:
    uncertain = job.status is JobStatus.UNCERTAIN
    embed = discord.Embed(
        title="Not sure it started" if uncertain else "Could not make this image",
        colour=WARN if uncertain else FAIL,
    )
    embed.description = f"{clip(message, 1500)}\n\n> {safe_prompt(job.request.prompt, 300)}"
    embed.set_footer(text=footer(job))
    return embed


def info_embed(job: Job) -> discord.Embed:
    r = job.request
    embed = discord.Embed(title=f"Job {job.id}", colour=BRAND)
    embed.description = safe_prompt(r.prompt, 3500)
    embed.add_field(name="Mode", value=r.mode.value, inline=True)
    embed.add_field(name="Status", value=job.status.value, inline=True)
    embed.add_field(name="Settings", value=_settings_line(job), inline=False)
    if r.style is not None:  # its text was added to the prompt sent to the image service
        style = f"**{safe_prompt(r.style.name, 40)}**: {safe_prompt(r.style.text, 900)}"
        embed.add_field(name="Style", value=style, inline=False)
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>", inline=True)
    embed.add_field(name="Created", value=ts(job.created_at, "f"), inline=True)
    if job.finished_at:
        embed.add_field(name="Finished", value=ts(job.finished_at, "f"), inline=True)
    if job.credits is not None:
        embed.add_field(name="Credits", value=f"{job.credits:g}", inline=True)
    if job.error_message:
        embed.add_field(name="Problem", value=clip(job.error_message, 1024), inline=False)
    if job.parent_job_id:
        embed.add_field(name="Made from", value=f"job {job.parent_job_id}", inline=True)
    embed.set_footer(text=f"task {job.task_id}" if job.task_id else "not submitted yet")
    return embed


# /wan help, one catalog entry per line so that translators get short texts. Slash command and
# option names stay in English here (the names Discord shows are localized; these lines quote
# the commands' English names, which every client also accepts).
HELP_LINES = (
    t(
        "**/imagine** `prompt` - make pictures from text. Options: resolution (1K, 2K, 4K), "
        "aspect_ratio, count (1-4), thinking (better composition, slower), seed, watermark."
    ),
    t(
        "**/edit** `prompt` `image` [image2 … image9] - change pictures. Refer to them as "
        '"image 1", "image 2" in the prompt: *"put the hat from image 2 on the cat in image 1"*.'
    ),
    t(
        '**/imageset** `prompt` - a coherent series of 2-12 pictures: *"four-panel comic: a cat '
        'learns to ski"*.'
    ),
    t(
        "**style** - on all three, one of this server's styles (its admins set them); its text "
        "is added to your prompt."
    ),
    t("**Right-click a message → Apps → Edit with Wan** - edit every image in that message."),
    t("**Reply to a message with images and mention me** with an instruction to edit them."),
    t("**Buttons** under every result: Reroll, Upscale 4K, Edit, Vary, Info, Delete."),
    t(
        "**Busy?** Requests wait their turn; the status message shows your place in line and "
        "when it should start. **Cancel** on it takes a waiting job out of the line at no cost "
        "(you, or members with Manage Messages); once it is with the image service it can't be "
        "stopped."
    ),
    t("**/queue** - your waiting jobs, and a menu to cancel one. **/quota** - your credits left."),
    t(
        "**/history** - your jobs in every server, newest first, with their cost; pick one to "
        "**Show here** (its result again, in this channel) or **Re-run** it with a new seed."
    ),
    t(
        "**/settings** - your own defaults (resolution, shape, count, thinking, watermark, a "
        "prompt suffix) for every server; an option in a command wins."
    ),
    t("**/wan info** `job_id` - the full prompt and settings of a job."),
)
HELP_LIMITS = t(
    "Limits: prompts up to {max_prompt} characters; up to {max_images} input images (PNG, JPEG, "
    "WEBP or BMP, 240-8000 px a side, at most 20 MB); 4K and thinking only for plain /imagine.",
    max_prompt=MAX_PROMPT_CHARS,
    max_images=MAX_INPUT_IMAGES,
)
HELP_FOOTER = t("Results are posted in the channel; only you see error messages.")


def help_text(locale: str | None = None) -> str:
    """The /wan help description in the reader's ``locale`` (English without one)."""
    lines = "\n".join(render(line, locale) for line in HELP_LINES)
    return f"{lines}\n\n{render(HELP_LIMITS, locale)}"


HELP_TEXT = help_text()  # the English text


def help_embed(locale: str | None = None) -> discord.Embed:
    embed = discord.Embed(title="Wan 2.7 Image Pro", colour=BRAND, description=help_text(locale))
    embed.set_footer(text=render(HELP_FOOTER, locale))
    return embed
