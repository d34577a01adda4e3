"""Delivery rules: plain Python, no I/O. The texts themselves are the centre's (intake issues notices)."""
from __future__ import annotations


def channel_for(requested: str, available: set[str]) -> str:
    """Use the channel the applicant asked for where this deployment has it, else the delivery log."""
    return requested if requested in available else "log"
