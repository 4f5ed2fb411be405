"""``ganforge serve``: an HTTP API and a web page for a trained generator.

Needs the ``serve`` extra (``pip install 'ganforge[serve]'``: FastAPI and uvicorn).
"""

from .app import Limits, create_app

__all__ = ["Limits", "create_app"]
