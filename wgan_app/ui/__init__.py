"""The web UI (Gradio Blocks), one module per part:

    services.py      what the UI and API do, as plain functions of a `Services` object (no Gradio)
    common.py        Gradio helpers the parts share: errors as toasts, crisp pictures, the look
    generate_tab.py  the Generate tab: layout, and handlers that call services
    train_tab.py     the Train tab: the form, and the live view of the server's training run
    app.py           `build_demo()`: the tabs, the named API endpoints, the queue; `launch(args)`

Importing this package builds nothing, loads nothing and does not import Gradio: `build_demo`,
`launch` and `launch_options` import it on first use, so `services` stays usable without it.
"""

from .services import Settings

__all__ = ["Settings", "build_demo", "launch", "launch_options", "services_of"]


def __getattr__(name: str):  # PEP 562: the Gradio parts are imported when first asked for
    if name in ("build_demo", "launch", "services_of"):
        from . import app

        return getattr(app, name)
    if name == "launch_options":
        from .common import launch_options

        return launch_options
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
