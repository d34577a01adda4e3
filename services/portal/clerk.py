"""Portal pages: 综合窗口 (window clerk) workbench."""
from __future__ import annotations


class ClerkPages:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""
