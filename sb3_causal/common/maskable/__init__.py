"""Masked replay buffers and action-mask utilities (as ``sb3_contrib.common.maskable``)."""
