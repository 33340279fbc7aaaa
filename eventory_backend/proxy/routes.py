from __future__ import annotations

from ..api import Blueprint

blp = Blueprint("proxy", __name__, description="Eventory, relayed and brokered.")
