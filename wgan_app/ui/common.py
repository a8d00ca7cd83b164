"""Gradio helpers the tabs and endpoints share: errors as toasts, crisp pictures, the look."""

from __future__ import annotations

import functools
import html
from typing import Optional

import gradio as gr
import numpy as np
from PIL import Image

from ..errors import UserError
from ..images import upscale

CSS = """
.pixelated img { image-rendering: pixelated; image-rendering: crisp-edges; }
#status-line { min-height: 2.5em; }
footer { display: none !important; }
"""
PRIVATE = dict(api_visibility="private")  # UI-only handlers: not part of the API clients see


def friendly(fn):
    """Turn a UserError into a gr.Error: shown in the page, returned through the API, server unharmed."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:  # the message may echo user input, and gr.Error renders HTML
            raise gr.Error(html.escape(str(e), quote=False), print_exception=False) from None
    return wrapper


def _view(image: np.ndarray) -> Image.Image:
    """Nearest-neighbour upscale to about 600 px, so 28-pixel digits are visible and crisp."""
    return upscale(image, max(2, round(600 / max(image.shape))))


def _owner(request: Optional[gr.Request]) -> str:
    """Who a training run belongs to, as other visitors read it in the status line."""
    if request is not None and getattr(request, "username", None):
        return str(request.username)
    session = getattr(request, "session_hash", None) if request is not None else None
    return f"visitor {session[:6]}" if session else "an API client"


def launch_options() -> dict:
    """Look-and-feel arguments of `launch()` (Gradio 6 takes theme and css there, not in Blocks)."""
    system = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web fonts: the app works offline
    return dict(theme=gr.themes.Soft(font=system, font_mono=["ui-monospace", "monospace"]), css=CSS)
