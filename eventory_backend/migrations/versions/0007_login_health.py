"""Credential health: each Eventory login's last sign-in outcome and when it was made

`status` is `unknown` until the broker signs in with the login, then `ok`, `rejected` or
`unreachable`; `checked_at` is when (UTC, null before the first sign-in). Existing logins start
`unknown`. On MySQL and MariaDB the timestamp keeps its microseconds, as every other one does
since 0005.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 14:00:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# SQLite rebuilds the table to change it: keep its AUTOINCREMENT (0003), or deleted ids come back.
LOGINS_TABLE = {'sqlite_autoincrement': True}


def upgrade():
    timestamp = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
    with op.batch_alter_table('eventory_logins', schema=None, table_kwargs=LOGINS_TABLE) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), server_default='unknown', nullable=False))
        batch_op.add_column(sa.Column('checked_at', timestamp, nullable=True))


def downgrade():
    with op.batch_alter_table('eventory_logins', schema=None, table_kwargs=LOGINS_TABLE) as batch_op:
        batch_op.drop_column('checked_at')
        batch_op.drop_column('status')
