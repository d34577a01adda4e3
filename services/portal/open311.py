"""Portal pages: Open311 GeoReport v2 for online channels."""
from __future__ import annotations


class Open311Api:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""
