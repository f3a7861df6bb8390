"""Embeds for every state a job can be in. Text from users is escaped and clipped to Discord's
limits; embeds never ping anyone."""

from __future__ import annotations

import time
from collections.abc import Sequence

import discord

from bot.domain.models import GenerationRequest, Job, JobStatus, Mode, ResultImage
from bot.domain.text import Text, t, tn
from bot.domain.validation import MAX_INPUT_IMAGES, MAX_PROMPT_CHARS, effective_resolution
from bot.i18n.replies import render
from bot.jobs.delivery import Progress, ProgressKind
from bot.jobs.messages import rebuilt

BRAND = discord.Colour.from_rgb(88, 101, 242)
OK = discord.Colour.green()
WARN = discord.Colour.orange()
FAIL = discord.Colour.red()

MODEL_NAME = "Wan 2.7 Image Pro"  # a name: the same in every language
PROMPT_PREVIEW = 700  # characters of the prompt shown on result and status embeds

CANCEL_HINT = t("Press **Cancel** to take it out of the line; nothing is charged.")
AT_CRUN_NOTE = t("It is with the image service now and can no longer be stopped.")

# A job's mode as it heads its messages, in the channel's language.
MODE_NAMES = {
    Mode.TEXT_TO_IMAGE: t("Imagine"),
    Mode.EDIT: t("Edit"),
    Mode.IMAGE_SET: t("Image set"),
}
# A job's status on /wan info (the English is the stored value).
STATUS_NAMES = {
    JobStatus.QUEUED: t("queued"),
    JobStatus.SUBMITTING: t("submitting"),
    JobStatus.PENDING: t("pending"),
    JobStatus.RUNNING: t("running"),
    JobStatus.SUCCEEDED: t("succeeded"),
    JobStatus.FAILED: t("failed"),
    JobStatus.UNCERTAIN: t("uncertain"),
    JobStatus.EXPIRED: t("expired"),
}
REQUESTED_BY = t("Requested by")
SEED = t("Seed")
SIZE = t("Size")
TOOK = t("Took")
NOTE = t("Note")
SETTINGS = t("Settings")
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


def _settings_line(job: Job, locale: str | None) -> str:
    r = job.request
    bits: list[Text | str] = [
        effective_resolution(r).value,
        tn("{count} image", "{count} images", count=r.n),
    ]
    if r.aspect_ratio:
        bits.append(r.aspect_ratio)
    if r.images:
        bits.append(tn("{count} reference", "{count} references", count=len(r.images)))
    if r.thinking:
        bits.append(t("thinking"))
    if r.seed is not None:
        bits.append(t("seed {seed}", seed=str(r.seed)))  # a str: no thousands separators
    return " · ".join(render(bit, locale) for bit in bits)


def _quoted(state: Text | str, prompt: str, locale: str | None) -> str:
    """A status line above the (escaped, clipped) prompt."""
    return f"{render(state, locale)}\n\n> {safe_prompt(prompt, 300)}"


def preparing_embed(request: GenerationRequest, locale: str | None = None) -> discord.Embed:
    title = t("{mode}: starting", mode=MODE_NAMES[request.mode])
    embed = discord.Embed(title=render(title, locale), colour=BRAND)
    embed.description = _quoted(t("⏳ Checking your request…"), request.prompt, locale)
    return embed


def status_embed(
    job: Job, progress: Progress, *, now: float | None = None, locale: str | None = None
) -> discord.Embed:
    """A job's status message while it waits or runs, in ``locale`` (the job's language)."""
    now = time.time() if now is None else now
    kind = progress.kind
    if kind is ProgressKind.CANCELLED:
        return cancelled_embed(job, progress.cancelled_by, locale)
    mode = MODE_NAMES[job.request.mode]
    title = t("{mode}: working on it", mode=mode)
    colour = BRAND
    if kind is ProgressKind.QUEUED:
        title = t("{mode}: waiting in line", mode=mode)
        state = f"{render(waiting_line(progress, now), locale)}\n{render(CANCEL_HINT, locale)}"
    elif kind is ProgressKind.SLOW:
        state = render(
            t("🐢 Taking longer than usual. You will be pinged when it is done."), locale
        )
        colour = WARN
    else:  # SUBMITTED or RUNNING: crun has it
        started = ts(job.submitted_at or job.created_at)
        rendering = t("🎨 Rendering, started {started}", started=started)
        if progress.eta and progress.eta > now:
            rendering = t(
                "🎨 Rendering, started {started}, ready {ready}",
                started=started,
                ready=ts(progress.eta),
            )
        state = f"{render(rendering, locale)}\n{render(AT_CRUN_NOTE, locale)}"
    embed = discord.Embed(title=render(title, locale), colour=colour)
    embed.description = _quoted(state, job.request.prompt, locale)
    embed.add_field(name=render(SETTINGS, locale), value=_settings_line(job, locale), inline=False)
    embed.set_footer(text=footer(job))
    return embed


def waiting_line(progress: Progress, now: float) -> Text:
    """The waiting state, as far as it is known: "⏳ Waiting in line: #3, should start in 2 min".
    An estimate already passed would read "2 seconds ago": it starts at the next free slot."""
    place = progress.queue_position
    eta = progress.eta
    if place and eta and eta > now:
        return t("⏳ Waiting in line: #{place}, should start {when}", place=place, when=ts(eta))
    if place and eta:
        return t("⏳ Waiting in line: #{place}, starting soon", place=place)
    if place:
        return t("⏳ Waiting in line: #{place}", place=place)
    if eta and eta > now:
        return t("⏳ Waiting in line, should start {when}", when=ts(eta))
    if eta:
        return t("⏳ Waiting in line, starting soon")
    return t("⏳ Waiting in line")


def cancelled_embed(job: Job, by: int | None, locale: str | None = None) -> discord.Embed:
    """The final state of a job taken out of the line before crun saw it."""
    title = t("{mode}: cancelled", mode=MODE_NAMES[job.request.mode])
    embed = discord.Embed(title=render(title, locale), colour=WARN)
    state = t("✖️ Cancelled; nothing was charged.")
    if by is not None:
        member = f"<@{by}>"  # a mention: Discord shows the member's name
        state = t("✖️ Cancelled by {member}; nothing was charged.", member=member)
    embed.description = _quoted(state, job.request.prompt, locale)
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


def done_embed(job: Job, jump_url: str | None, locale: str | None = None) -> discord.Embed:
    title = t("{mode}: done", mode=MODE_NAMES[job.request.mode])
    embed = discord.Embed(title=render(title, locale), colour=OK)
    where = (
        t("[Jump to the result]({url})", url=jump_url) if jump_url else t("The result is below.")
    )
    embed.description = _quoted(where, job.request.prompt, locale)
    embed.set_footer(text=footer(job))
    return embed


def failure_embed(job: Job, message: Text | str, locale: str | None = None) -> discord.Embed:
    """A failed job's message in ``locale``; a plain string is shown as it is."""
    uncertain = job.status is JobStatus.UNCERTAIN
    title = t("Not sure it started") if uncertain else t("Could not make this image")
    embed = discord.Embed(title=render(title, locale), colour=WARN if uncertain else FAIL)
    text = clip(render(message, locale), 1500)
    embed.description = f"{text}\n\n> {safe_prompt(job.request.prompt, 300)}"
    embed.set_footer(text=footer(job))
    return embed


def info_embed(job: Job, locale: str | None = None) -> discord.Embed:
    """/wan info, in the asking member's ``locale``."""
    r = job.request

    def field(name: Text, value: Text | str, *, inline: bool = True) -> None:
        embed.add_field(name=render(name, locale), value=render(value, locale), inline=inline)

    embed = discord.Embed(title=render(t("Job {job_id}", job_id=job.id), locale), colour=BRAND)
    embed.description = safe_prompt(r.prompt, 3500)
    field(t("Mode"), r.mode.value)
    field(t("Status"), STATUS_NAMES.get(job.status, job.status.value))
    field(SETTINGS, _settings_line(job, locale), inline=False)
    if r.style is not None:  # its text was added to the prompt sent to the image service
        style = f"**{safe_prompt(r.style.name, 40)}**: {safe_prompt(r.style.text, 900)}"
        field(t("Style"), style, inline=False)
    field(REQUESTED_BY, f"<@{job.user_id}>")
    field(t("Created"), ts(job.created_at, "f"))
    if job.finished_at:
        field(t("Finished"), ts(job.finished_at, "f"))
    if job.credits is not None:
        field(t("Credits"), f"{job.credits:g}")
    if job.error_message:
        # Stored in English; one with no free text is told again in the member's language.
        problem = render(rebuilt(job) or job.error_message, locale)
        field(t("Problem"), clip(problem, 1024), inline=False)
    if job.parent_job_id:
        field(t("Made from"), t("job {job_id}", job_id=job.parent_job_id))
    task = t("task {task_id}", task_id=job.task_id) if job.task_id else t("not submitted yet")
    embed.set_footer(text=render(task, locale))
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
    embed = discord.Embed(title=MODEL_NAME, colour=BRAND, description=help_text(locale))
    embed.set_footer(text=render(HELP_FOOTER, locale))
    return embed
