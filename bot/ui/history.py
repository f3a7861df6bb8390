"""/history: the member's own jobs, ten a page, with Prev/Next, a menu to pick one, and two
actions on the picked job: Show here (its result again, in this channel, with its buttons) and
Re-run (the same settings with a new seed, through the one job flow: this server's rules,
blocked words and the member's quota apply as to any request).

Like the result buttons, every control is a persistent DynamicItem and nothing is kept in
memory: the custom_id carries the owner and the page or job (``wan:1:hp:<owner>:<page>``,
``wan:1:hs:<owner>:<page>``, ``wan:1:hx:<owner>:<job>``, ``wan:1:hr:<owner>:<job>``). Only the
owner may press them; every press re-reads the store, so purged jobs are simply gone.
"""

from __future__ import annotations

import re
from typing import Any, Self

import discord

from bot.domain.models import Job, JobStatus
from bot.domain.text import Text, t, tn
from bot.domain.validation import effective_resolution
from bot.errors import InvalidInput
from bot.i18n.replies import render
from bot.services.history import HistoryEntry, HistoryPage
from bot.ui import components, embeds
from bot.ui.doors import InteractionDoor
from bot.ui.flow import begin_job
from bot.ui.language import member_locale
from bot.ui.presses import JOB, PREFIX, guarded, services_of
from bot.ui.reshow import show_here
from bot.ui.result_messages import discord_target
from bot.ui.sink import NO_PINGS
from bot.ui.target import message_link

EXCERPT = 50  # characters of a prompt per line
NOT_YOURS = t("These controls belong to someone else's /history. Use /history to see your own.")
EMPTY = t("You have no jobs yet (or they were deleted). Try **/imagine**.")
STATUS_ICONS = {
    JobStatus.QUEUED: "⏳",
    JobStatus.SUBMITTING: "⏳",
    JobStatus.PENDING: "🎨",
    JobStatus.RUNNING: "🎨",
    JobStatus.SUCCEEDED: "✅",
    JobStatus.FAILED: "❌",
    JobStatus.UNCERTAIN: "❔",
    JobStatus.EXPIRED: "⌛",
}
OWNER = r"(?P<owner>[0-9]{1,20})"
# The replies below name these buttons: their translations use the same words.
SHOW_HERE, RE_RUN = t("Show here"), t("Re-run")
ACTION_LOOKS = {"hx": (SHOW_HERE, "📌"), "hr": (RE_RUN, "🔁")}


def _id(kind: str, owner: int, tail: object) -> str:
    return f"{PREFIX}:{kind}:{owner}:{tail}"


def _check_owner(interaction: discord.Interaction[Any], owner: int) -> None:
    if interaction.user.id != owner:
        raise InvalidInput(NOT_YOURS)


# --- the panel ----------------------------------------------------------------------------------


def jump_url(job: Job) -> str | None:
    """The first message of the job's posted result, if it was posted on Discord."""
    target = discord_target(job)
    parts = (job.receipt or {}).get("parts")
    if target is None or not isinstance(parts, dict) or "1" not in parts:
        return None
    return message_link(target.guild_id, target.channel_id, int(parts["1"]))


def settings_text(job: Job, locale: str | None = None) -> str:
    r = job.request
    # The mode's name is the same word as the command options' (``text-to-image``).
    bits = [effective_resolution(r).value, f"×{r.n}", r.mode.value]
    if r.style is not None:
        style = t("style {name}", name=embeds.safe_prompt(r.style.name, 30))
        bits.append(render(style, locale))
    return ", ".join(bits)


def cost_text(entry: HistoryEntry) -> Text:
    credits = entry.credits
    if credits is None:
        return t("cost unknown")
    if float(credits).is_integer():
        amount = tn("{count} credit", "{count} credits", count=int(credits))
    else:
        amount = t("{amount} credits", amount=float(credits))
    return t("{amount} held", amount=amount) if entry.held else amount


def line(entry: HistoryEntry, locale: str | None = None) -> str:
    job = entry.job
    icon = STATUS_ICONS.get(job.status, "•")
    prompt = embeds.safe_prompt(" ".join(job.request.prompt.split()), EXCERPT)
    text = (
        f"{icon} `{job.id}` {embeds.ts(job.created_at)} · {prompt} · "
        f"{settings_text(job, locale)} · {render(cost_text(entry), locale)}"
    )
    url = jump_url(job)
    if url is None:
        return text
    link = t("[result]({url})", url=url)
    return f"{text} · {render(link, locale)}"


def history_panel(
    page: HistoryPage, owner: int, chosen: Job | None = None, *, locale: str | None = None
) -> tuple[discord.Embed, discord.ui.View]:
    """The private /history answer for ``page`` in the member's ``locale``; ``chosen``: the job
    the menu picked."""
    embed = discord.Embed(title=render(t("Your history"), locale), colour=embeds.BRAND)
    lines = [line(e, locale) for e in page.entries]
    embed.description = embeds.clip("\n".join(lines), 4096) if lines else render(EMPTY, locale)
    footer = t("Page {page} · newest first · only you can see this", page=page.page + 1)
    embed.set_footer(text=render(footer, locale))
    view = discord.ui.View(timeout=None)
    if page.entries:
        view.add_item(JobMenu(owner, page.page, _options(page, chosen, locale), locale=locale))
    if chosen is not None:
        view.add_item(JobAction("hx", owner, chosen.id, locale=locale))
        view.add_item(JobAction("hr", owner, chosen.id, locale=locale))
    if page.has_prev or page.has_next:
        prev, after = max(page.page - 1, 0), page.page + 1
        view.add_item(PageButton(owner, prev, "prev", disabled=not page.has_prev, locale=locale))
        view.add_item(PageButton(owner, after, "next", disabled=not page.has_next, locale=locale))
    return embed, view


def _options(
    page: HistoryPage, chosen: Job | None, locale: str | None
) -> list[discord.SelectOption]:
    def about(job: Job) -> str:
        status = embeds.STATUS_NAMES.get(job.status, job.status.value)
        return render(t("job {job} · {status}", job=job.id, status=status), locale)

    return [
        discord.SelectOption(
            label=embeds.clip(" ".join(e.job.request.prompt.split()) or e.job.id, 100),
            value=e.job.id,
            description=about(e.job),
            emoji=STATUS_ICONS.get(e.job.status, "•"),
            default=chosen is not None and chosen.id == e.job.id,
        )
        for e in page.entries
    ]


async def _render(
    interaction: discord.Interaction[Any], owner: int, page_number: int, chosen: Job | None = None
) -> None:
    services = services_of(interaction)
    await interaction.response.defer()  # the panel itself is updated
    page = await services.history.page(owner, page_number)
    locale = member_locale(interaction)
    embed, view = history_panel(page, owner, chosen, locale=locale)
    content = render(_chosen_text(chosen), locale) if chosen is not None else None
    await interaction.edit_original_response(
        content=content, embed=embed, view=view, allowed_mentions=NO_PINGS
    )


def _chosen_text(job: Job) -> Text:
    prompt = embeds.safe_prompt(" ".join(job.request.prompt.split()), EXCERPT)
    return t(
        "Picked `{job}`: {prompt}. **Show here** posts its result again in this channel; "
        "**Re-run** makes it again with a new seed, charged to you.",
        job=job.id,
        prompt=prompt,
    )


# --- the controls -------------------------------------------------------------------------------


class PageButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(rf"{PREFIX}:h(?P<way>[pn]):{OWNER}:(?P<page>[0-9]{{1,6}})"),
):
    def __init__(
        self, owner: int, page: int, way: str, *, disabled: bool = False, locale: str | None = None
    ) -> None:
        label, emoji = (t("Prev"), "◀️") if way == "prev" else (t("Next"), "▶️")
        super().__init__(
            discord.ui.Button(
                label=render(label, locale),
                emoji=emoji,
                style=discord.ButtonStyle.secondary,
                custom_id=_id("hp" if way == "prev" else "hn", owner, page),
                disabled=disabled,
            ),
            row=2,
        )
        self.owner, self.page = owner, page

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        way = "prev" if match["way"] == "p" else "next"
        return cls(int(match["owner"]), int(match["page"]), way)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await guarded(interaction, self._run(interaction))

    async def _run(self, interaction: discord.Interaction[Any]) -> None:
        _check_owner(interaction, self.owner)
        await _render(interaction, self.owner, self.page)


class JobMenu(
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
    template=re.compile(rf"{PREFIX}:hs:{OWNER}:(?P<page>[0-9]{{1,6}})"),
):
    """Pick one of the page's jobs; the panel then offers Show here and Re-run for it."""

    def __init__(
        self,
        owner: int,
        page: int,
        options: list[discord.SelectOption],
        *,
        locale: str | None = None,
    ) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=_id("hs", owner, page),
                placeholder=render(t("Pick a job to show here or re-run…"), locale),
                options=options,
            ),
            row=0,
        )
        self.owner, self.page = owner, page

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        options = list(item.options) if isinstance(item, discord.ui.Select) else []
        options = options or [discord.SelectOption(label="-", value="-")]
        return cls(int(match["owner"]), int(match["page"]), options)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await guarded(interaction, self._run(interaction))

    async def _run(self, interaction: discord.Interaction[Any]) -> None:
        _check_owner(interaction, self.owner)
        values = self.item.values
        if not values:
            raise InvalidInput(t("Pick one of your jobs in the menu."))
        job = await services_of(interaction).history.job_of(self.owner, values[0])
        await _render(interaction, self.owner, self.page, job)


class JobAction(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(rf"{PREFIX}:h(?P<kind>[xr]):{OWNER}:{JOB}"),
):
    """Show here (``hx``) or Re-run (``hr``) on the picked job."""

    def __init__(self, kind: str, owner: int, job_id: str, *, locale: str | None = None) -> None:
        label, emoji = ACTION_LOOKS[kind]
        super().__init__(
            discord.ui.Button(
                label=render(label, locale),
                emoji=emoji,
                style=discord.ButtonStyle.primary,
                custom_id=_id(kind, owner, job_id),
            ),
            row=1,
        )
        self.kind, self.owner, self.job_id = kind, owner, job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(f"h{match['kind']}", int(match["owner"]), match["job"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await guarded(interaction, self._run(interaction))

    async def _run(self, interaction: discord.Interaction[Any]) -> None:
        _check_owner(interaction, self.owner)
        services = services_of(interaction)
        job = await services.history.job_of(self.owner, self.job_id)
        if self.kind == "hx":
            await show_here(interaction, services, job, components.result_view)
            return
        request = services.generation.reroll(job)  # same settings, a new seed
        await begin_job(InteractionDoor(interaction), services, request, parent_job_id=job.id)


DYNAMIC_ITEMS = (PageButton, JobMenu, JobAction)
