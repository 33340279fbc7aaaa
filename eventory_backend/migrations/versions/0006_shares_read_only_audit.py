"""Teams: logins shared with other accounts, read-only logins, and the audit of what was done

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:00:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

MYSQL_TABLE = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'}
# UTC timestamps with microseconds on MySQL too, as models' UTCDateTime reads them (see 0005).
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
# SQLite rebuilds the table to change it: keep its AUTOINCREMENT (0003), or deleted ids come back.
LOGINS_TABLE = {'sqlite_autoincrement': True}


def upgrade():
    with op.batch_alter_table('eventory_logins', schema=None, table_kwargs=LOGINS_TABLE) as batch_op:
        batch_op.add_column(sa.Column('read_only', sa.Boolean(), server_default=sa.false(), nullable=False))

    op.create_table('login_shares',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('login_id', sa.Integer(), nullable=False),
    sa.Column('grantee_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['grantee_id'], ['users.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['login_id'], ['eventory_logins.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('login_id', 'grantee_id'),
    sqlite_autoincrement=True,
    **MYSQL_TABLE
    )
    with op.batch_alter_table('login_shares', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_shares_grantee_id'), ['grantee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_shares_login_id'), ['login_id'], unique=False)

    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', TIMESTAMP, nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('login_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('method', sa.String(length=10), nullable=True),
    sa.Column('path', sa.Text(), nullable=True),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('detail', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True,
    **MYSQL_TABLE
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_login_id'), ['login_id'], unique=False)
        batch_op.create_index('ix_audit_events_owner_id_id', ['owner_id', 'id'], unique=False)
        batch_op.create_index('ix_audit_events_actor_id_id', ['actor_id', 'id'], unique=False)


def downgrade():
    # Shares and the audit are lost; every login becomes writable again.
    op.drop_table('audit_events')
    op.drop_table('login_shares')
    with op.batch_alter_table('eventory_logins', schema=None, table_kwargs=LOGINS_TABLE) as batch_op:
        batch_op.drop_column('read_only')
