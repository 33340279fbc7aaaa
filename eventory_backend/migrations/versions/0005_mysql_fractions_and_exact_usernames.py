"""MySQL and MariaDB: timestamps keep their microseconds, usernames compare exactly

MySQL's DATETIME keeps no fraction of a second unless asked for one (DATETIME(6)), and its
default collations ignore accents as well as case, so the unique index on users.username_key
would make `ada` and `adá` one account. SQLite and PostgreSQL already keep both: nothing changes
there. Downgrading on MySQL rounds timestamps to the second, and fails if two usernames differ
only in what the database's collation ignores.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 12:00:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

TIMESTAMPS = (  # table, column, nullable
    ('users', 'created_at', False),
    ('token_families', 'expires_at', False),
    ('refresh_tokens', 'expires_at', False),
    ('refresh_tokens', 'used_at', True),
    ('revoked_tokens', 'expires_at', False),
    ('eventory_logins', 'created_at', False),
    ('eventory_logins', 'updated_at', False),
)


def _on_mysql():
    return op.get_bind().dialect.name in ('mysql', 'mariadb')


def _change(timestamp, old_timestamp, username_key, old_username_key):
    # MySQL's MODIFY COLUMN restates the whole column: the nullability must be given again.
    for table, column, nullable in TIMESTAMPS:
        op.alter_column(table, column, type_=timestamp, existing_type=old_timestamp, existing_nullable=nullable)
    op.alter_column('users', 'username_key', type_=username_key, existing_type=old_username_key, existing_nullable=False)


def upgrade():
    if _on_mysql():
        _change(mysql.DATETIME(fsp=6), mysql.DATETIME(), mysql.VARCHAR(256, collation='utf8mb4_bin'), sa.String(256))


def downgrade():
    if _on_mysql():
        _change(mysql.DATETIME(), mysql.DATETIME(fsp=6), sa.String(256), mysql.VARCHAR(256, collation='utf8mb4_bin'))
