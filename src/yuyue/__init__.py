"""yuyue (预约): an open-source reservation platform."""

__version__ = "0.1.0"
