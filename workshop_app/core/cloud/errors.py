"""Errors of the cloud link, each a plain line fit to print (the CLI shows no traceback)."""

from __future__ import annotations

from workshop_app.core.errors import WorkshopError


class CloudError(WorkshopError):
    """A cloud profile, certificate, key, grant or broker the link cannot use."""
