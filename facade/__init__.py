"""The HTTP facade: search, metadata, downloads, upload status; commands published for writes.

Other packages use what is exported here.
"""

from facade.app import create_app, open_runtime, serve
from facade.settings import FacadeSettings

__all__ = ["FacadeSettings", "create_app", "open_runtime", "serve"]
