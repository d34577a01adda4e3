"""Portal pages: electronic supervision (电子监察) workbench."""
from __future__ import annotations


class SupervisorPages:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""
