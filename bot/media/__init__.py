"""Downloading result images, checking input images, fitting results under an upload limit.

Everything that touches Pillow is a pure, synchronous function with an ``*_async`` twin that runs
it in a worker thread, so the event loop never decodes or encodes an image itself.
"""

from bot.media.decode import inspect_image
from bot.media.fetch import MediaFetcher
from bot.media.fit import MIN_LONG_SIDE, QUALITY_LADDER, Fitted, fit_image, fit_image_async
from bot.media.grid import make_grid, make_grid_async
from bot.media.inputs import (
    check_input_image,
    check_input_image_async,
    prepare_for_upload,
    prepare_for_upload_async,
)
from bot.media.limits import (
    INPUT_MAX_ASPECT,
    INPUT_MAX_BYTES,
    INPUT_MAX_SIDE,
    INPUT_MIN_SIDE,
    MAX_PIXELS,
)

__all__ = [
    "INPUT_MAX_ASPECT",
    "INPUT_MAX_BYTES",
    "INPUT_MAX_SIDE",
    "INPUT_MIN_SIDE",
    "MAX_PIXELS",
    "MIN_LONG_SIDE",
    "QUALITY_LADDER",
    "Fitted",
    "MediaFetcher",
    "check_input_image",
    "check_input_image_async",
    "fit_image",
    "fit_image_async",
    "inspect_image",
    "make_grid",
    "make_grid_async",
    "prepare_for_upload",
    "prepare_for_upload_async",
]
