"""Shares as invitations, declines remembered for a day, and an audit that stays cheap

`login_shares.accepted`: a new share waits for its grantee; every share made before this revision
stays accepted. `share_declines`: an invitation the grantee declined (its owner cannot send it to
them again for a day). `audit_events.grantee_id`: the account a share event is about, who sees it
too; `audit_events.count`: identical refusals within a minute folded into one event (existing
events count 1). The audit's indexes serve each reader's page without reading anyone else's
events: the single `login_id` index gives way to (owner, login, id), (actor, login, id) and
(grantee, login, id).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 22:30:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

MYSQL_TABLE = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'}
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
# SQLite rebuilds a table to change it: keep its AUTOINCREMENT (0003), or deleted ids come back.
AUTOINCREMENT = {'sqlite_autoincrement': True}
NEW_AUDIT_INDEXES = {
    'ix_audit_events_grantee_id_id': ['grantee_id', 'id'],
    'ix_audit_events_owner_id_login_id_id': ['owner_id', 'login_id', 'id'],
    'ix_audit_events_actor_id_login_id_id': ['actor_id', 'login_id', 'id'],
    'ix_audit_events_grantee_id_login_id_id': ['grantee_id', 'login_id', 'id'],
}


def upgrade():
    with op.batch_alter_table('login_shares', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('accepted', sa.Boolean(), server_default=sa.true(), nullable=False))

    op.create_table('share_declines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('login_id', sa.Integer(), nullable=False),
    sa.Column('grantee_id', sa.Integer(), nullable=False),
    sa.Column('declined_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['grantee_id'], ['users.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['login_id'], ['eventory_logins.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('login_id', 'grantee_id'),
    **MYSQL_TABLE
    )
    with op.batch_alter_table('share_declines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_share_declines_grantee_id'), ['grantee_id'], unique=False)

    with op.batch_alter_table('audit_events', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('grantee_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('count', sa.Integer(), server_default='1', nullable=False))
        batch_op.drop_index('ix_audit_events_login_id')
        for name, columns in NEW_AUDIT_INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade():
    # Pending invitations go (kept, they would become shares nobody accepted), and so do the
    # declines; folded refusals stay one event each, their counts lost.
    with op.batch_alter_table('audit_events', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        for name in NEW_AUDIT_INDEXES:
            batch_op.drop_index(name)
        batch_op.create_index(batch_op.f('ix_audit_events_login_id'), ['login_id'], unique=False)
        batch_op.drop_column('count')
        batch_op.drop_column('grantee_id')
    op.drop_table('share_declines')
    shares = sa.table('login_shares', sa.column('accepted', sa.Boolean()))
    op.execute(shares.delete().where(shares.c.accepted == sa.false()))
    with op.batch_alter_table('login_shares', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        batch_op.drop_column('accepted')
