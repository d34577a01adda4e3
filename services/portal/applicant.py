"""Portal pages: the applicant's own lookup, rating and complaint (no sign-in)."""
from __future__ import annotations


class ApplicantPages:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""
