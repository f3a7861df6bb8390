"""Discord's documented limits, enforced like the real API: 400 50035 "Invalid Form Body" with
the nested ``errors`` object, so discord.py raises the same ``HTTPException`` it would in
production."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tests.fakes.discord_fake.model import FakeAttachment, walk_components
from tests.fakes.discord_fake.protocol import (
    E_EMPTY_MESSAGE,
    E_INVALID_FORM_BODY,
    FLAG_COMPONENTS_V2,
    FLAG_LOADING,
    JSON,
    ApiError,
)

COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


def form_error(path: Sequence[str | int], code: str, message: str) -> ApiError:
    """400 Invalid Form Body with Discord's nested ``errors`` object."""
    errors: JSON = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        errors = {str(key): errors}
    return ApiError(400, E_INVALID_FORM_BODY, "Invalid Form Body", errors=errors)


def validate_message(
    content: str,
    embeds: list[JSON],
    components: list[JSON],
    attachments: list[FakeAttachment],
    flags: int,
    *,
    poll: Any = None,
    stickers: Any = None,
) -> None:
    if flags & FLAG_LOADING:
        return
    if not (content or embeds or components or attachments or poll or stickers):
        raise ApiError(400, E_EMPTY_MESSAGE, "Cannot send an empty message")
    if len(content) > 2000:
        raise form_error(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    if flags & FLAG_COMPONENTS_V2 and (content or embeds):
        raise form_error(
            ["content" if content else "embeds"],
            "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
            "The 'content' and 'embeds' fields cannot be used with components v2",
        )
    if len(embeds) > 10:
        raise form_error(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    limits = {"title": 256, "description": 4096}
    for i, embed in enumerate(embeds):
        for key, limit in limits.items():
            text = embed.get(key) or ""
            total += len(text)
            if len(text) > limit:
                raise form_error(
                    ["embeds", i, key],
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {limit} or fewer in length.",
                )
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise form_error(
                ["embeds", i, "fields"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        for j, fld in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                text = str(fld.get(key) or "")
                total += len(text)
                if not text or len(text) > limit:
                    raise form_error(
                        ["embeds", i, "fields", j, key],
                        "BASE_TYPE_BAD_LENGTH",
                        f"Must be between 1 and {limit} in length.",
                    )
        for key, sub, limit in (("footer", "text", 2048), ("author", "name", 256)):
            text = str((embed.get(key) or {}).get(sub) or "")
            total += len(text)
            if len(text) > limit:
                raise form_error(
                    ["embeds", i, key, sub],
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {limit} or fewer in length.",
                )
    if total > 6000:
        raise form_error(
            ["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )
    validate_components(components, v2=bool(flags & FLAG_COMPONENTS_V2))


def validate_components(components: list[JSON], *, v2: bool) -> None:
    if not v2:
        if len(components) > 5:
            raise form_error(
                ["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
            )
        for i, row in enumerate(components):
            if int(row.get("type", 0)) != 1:
                raise form_error(
                    ["components", i, "type"],
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "Top-level components must be action rows",
                )
            children = row.get("components") or []
            selects = [c for c in children if int(c["type"]) in (3, 5, 6, 7, 8)]
            if not children or len(children) > 5 or (selects and len(children) > 1):
                raise form_error(
                    ["components", i, "components"],
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
    seen: set[str] = set()
    for comp in walk_components(components):
        cid = comp.get("custom_id")
        if comp.get("type") == 2:
            if len(comp.get("label") or "") > 80:
                raise form_error(
                    ["components"], "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length."
                )
            link = comp.get("style") == 5
            if link and (cid or not comp.get("url")):
                raise form_error(
                    ["components"],
                    "BUTTON_COMPONENT_INVALID",
                    "Link buttons need a url and no custom_id",
                )
            if not link and comp.get("style") != 6 and not cid:
                raise form_error(
                    ["components"], "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED", "A custom id is required"
                )
        if cid is None:
            continue
        if len(cid) > 100:
            raise form_error(
                ["components"], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length."
            )
        if cid in seen:
            raise form_error(
                ["components"],
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(cid)


def validate_modal(data: JSON) -> None:
    if not 1 <= len(data.get("title") or "") <= 45:
        raise form_error(
            ["data", "title"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length."
        )
    cid = data.get("custom_id") or ""
    if not 1 <= len(cid) <= 100:
        raise form_error(
            ["data", "custom_id"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        raise form_error(
            ["data", "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
        )
    for comp in walk_components(components):
        if comp.get("type") == 4 and "label" in comp and len(comp["label"] or "") > 45:
            raise form_error(
                ["data", "components"], "BASE_TYPE_MAX_LENGTH", "Must be 45 or fewer in length."
            )


def validate_command(payload: JSON, where: list[str | int]) -> None:
    """A command's name and description (and its options) as Discord checks them on sync."""
    ctype = int(payload.get("type", 1))
    name = payload.get("name", "")
    if ctype == 1:
        if not COMMAND_NAME.match(name) or name != name.lower():
            raise form_error(
                [*where, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
            )
        if not 1 <= len(payload.get("description", "")) <= 100:
            raise form_error(
                [*where, "description"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        validate_localizations(payload, where)
        validate_options(payload.get("options") or [], [*where, "options"])
    elif not 1 <= len(name) <= 32:
        raise form_error(
            [*where, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
        )


def validate_localizations(item: JSON, where: list[str | int]) -> None:
    """A chat command's or option's translated names and descriptions, by the same rules."""
    for locale, name in (item.get("name_localizations") or {}).items():
        if not COMMAND_NAME.match(name) or name != name.lower():
            raise form_error(
                [*where, "name_localizations", locale],
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            )
    for locale, text in (item.get("description_localizations") or {}).items():
        if not 1 <= len(text) <= 100:
            raise form_error(
                [*where, "description_localizations", locale],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )


def validate_options(options: list[JSON], where: list[str | int]) -> None:
    if len(options) > 25:
        raise form_error(where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    optional_seen = False
    for i, opt in enumerate(options):
        name = opt.get("name", "")
        if not COMMAND_NAME.match(name) or name != name.lower():
            raise form_error(
                [*where, i, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
            )
        if not 1 <= len(opt.get("description", "")) <= 100:
            raise form_error(
                [*where, i, "description"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        validate_localizations(opt, [*where, i])
        for j, choice in enumerate(opt.get("choices") or []):
            for locale, text in (choice.get("name_localizations") or {}).items():
                if not 1 <= len(text) <= 100:
                    raise form_error(
                        [*where, i, "choices", j, "name_localizations", locale],
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    )
        if int(opt.get("type", 0)) in (1, 2):
            validate_options(opt.get("options") or [], [*where, i, "options"])
            continue
        if opt.get("required"):
            if optional_seen:
                raise form_error(
                    [*where, i],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
