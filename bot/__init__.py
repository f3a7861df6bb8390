"""wanbot: Wan 2.7 Image Pro for Discord communities, through crun.ai."""

__version__ = "0.1.0"
