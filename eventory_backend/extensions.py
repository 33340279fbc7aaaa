"""Extensions, created unbound here and bound to an app in `create_app`; nothing else."""

from pathlib import Path
from typing import TYPE_CHECKING

from flask_bcrypt import Bcrypt
from flask_cors import CORS
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from .database import Base
from .web.api import Api

db = SQLAlchemy(model_class=Base)
# What models subclass: db.Model, which type checkers know as the declarative Base it extends.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate(directory=str(Path(__file__).parent / "migrations"), render_as_batch=True)
bcrypt = Bcrypt()
cors = CORS()
api = Api()
