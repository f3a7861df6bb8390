"""The one place that knows crun's ``input`` field names for ``wan/2-7-image-pro``.

crun's documentation does not list the fields (shared wan-api.md section 2), so the bot reads the
live model schema (``schema``), binds each concept to a field by name, type and values at any
depth (``mapping``, with the operator's ``WAN_FIELD_MAP`` first), and sends values in the
schema's own spelling (``spelling``). Everything else in the project goes through ``Contract``;
no other module may spell a crun input field name.
"""

from bot.wan.contract.concepts import Concept, FieldNames
from bot.wan.contract.contract import PALETTE_HEX_KEY, PALETTE_RATIO_KEY, Contract
from bot.wan.contract.mapping import parse_override
from bot.wan.contract.schema import SchemaUnreadable, parse_model_schema

__all__ = [
    "PALETTE_HEX_KEY",
    "PALETTE_RATIO_KEY",
    "Concept",
    "Contract",
    "FieldNames",
    "SchemaUnreadable",
    "parse_model_schema",
    "parse_override",
]
