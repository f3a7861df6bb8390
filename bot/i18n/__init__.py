"""Localization: gettext catalogs (``locales/<folder>/LC_MESSAGES/wanbot.po``) that translators
edit, read with babel; the command translator discord.py asks when it syncs the commands.

``catalogs`` reads the files (lazily, once), ``rules`` holds Discord's limits for localized
names and texts, ``translator`` is the ``app_commands.Translator``; ``extract`` (a process of its
own: it loads the cogs) writes the template ``locales/wanbot.pot`` and merges it into the catalogs.
See docs/translating.md.
"""
