"""``python -m artstore.dev.facade_process``: the HTTP facade as one process of ``artstore dev``.

Settings come from ``ARTSTORE_*`` and ``ARTSTORE_FACADE_*`` variables, as for every service.
"""

from __future__ import annotations


def main() -> None:
    """Serve the facade until SIGINT or SIGTERM."""
    from artstore.logging import configure_logging
    from artstore.settings import load_settings
    from facade import FacadeSettings, serve

    settings = load_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    serve(settings, FacadeSettings())


if __name__ == "__main__":
    main()
