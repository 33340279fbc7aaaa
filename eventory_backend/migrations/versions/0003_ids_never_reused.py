"""Ids are never reused: AUTOINCREMENT for users and eventory_logins on SQLite

Without AUTOINCREMENT, SQLite hands the highest deleted id to the next row. PostgreSQL's
sequences never go back, so there is nothing to change there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 09:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

TABLES = ('users', 'eventory_logins')


def _recreate(autoincrement):
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate='always', table_kwargs={'sqlite_autoincrement': autoincrement}):
            pass


def upgrade():
    _recreate(True)


def downgrade():
    _recreate(False)
