"""Portal pages: village agent and town agent workbenches."""
from __future__ import annotations


class AgentPages:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""
