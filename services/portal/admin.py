"""Portal pages: city IT: users, catalogue and calendar versions."""
from __future__ import annotations


class AdminPages:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""
