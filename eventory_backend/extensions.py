"""Extensions, created unbound here and bound to an app in `create_app`."""

from pathlib import Path
from typing import TYPE_CHECKING

from flask_bcrypt import Bcrypt
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from .api import Api
from .verified_tokens import CachingJWTManager


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
# What models subclass: db.Model, which type checkers know as the declarative Base it extends.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate(directory=str(Path(__file__).parent / "migrations"), render_as_batch=True)
bcrypt = Bcrypt()
jwt = CachingJWTManager()
cors = CORS()
api = Api()
# Limits are per route (see limits.py); storage and on/off come from RATELIMIT_* settings.
limiter = Limiter(key_func=get_remote_address)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """Foreign keys (for ON DELETE CASCADE), WAL and a busy timeout on every SQLite connection."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
