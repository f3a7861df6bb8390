"""The numbers: what we agree to open at all, and what the model accepts as an input image.

They live apart from the code that enforces them because both the decoder (whose refusals point
at the input rules) and the input checks need them.
"""

from __future__ import annotations

from typing import Final

#: Hard cap on declared pixels before anything is decoded. Above every legitimate input
#: (8000x8000 = 64M) and result (4096x4096 = 16.8M), below Pillow's own warning threshold.
MAX_PIXELS: Final = 80_000_000

#: Upstream input rules (wan-api.md §2.2). "20 MB" is read as decimal megabytes: the stricter
#: reading, so nothing we accept is refused upstream.
INPUT_FORMATS: Final = frozenset({"JPEG", "PNG", "BMP", "WEBP"})
INPUT_MAX_BYTES: Final = 20_000_000
INPUT_MIN_SIDE: Final = 240
INPUT_MAX_SIDE: Final = 8000
INPUT_MAX_ASPECT: Final = 8
