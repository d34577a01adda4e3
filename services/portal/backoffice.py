"""Portal pages: approver and department head workbench."""
from __future__ import annotations


class BackOfficePages:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""
