"""Migrations of the infrastructure tables every service database carries (shared.infra).

Each service's first revision calls `upgrade_0001()`; these functions are frozen history: a later
change of the infrastructure tables gets a new function here (`upgrade_0002`, ...) called from a new
revision of every service, never an edit of an old one.
"""

import sqlalchemy as sa
from alembic import op

import shared.db


def upgrade_0001() -> None:
    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('consumer', sa.String(length=100), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=True),
    sa.Column('deliveries', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('failed_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_event_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_unpublished', ['published_at', 'id'], unique=False)

    op.create_table('processed_events',
    sa.Column('consumer', sa.String(length=100), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('processed_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'event_id', name=op.f('pk_processed_events'))
    )
    op.create_table('timers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('due_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('fired_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timers')),
    sa.UniqueConstraint('key', name=op.f('uq_timers_key'))
    )
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.create_index('ix_timers_pending', ['fired_at', 'due_at'], unique=False)


def downgrade_0001() -> None:
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.drop_index('ix_timers_pending')

    op.drop_table('timers')
    op.drop_table('processed_events')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_unpublished')

    op.drop_table('outbox')
    op.drop_table('dead_letters')


def upgrade_0002() -> None:
    """Issue 7 §3, §7: one dead letter per message; pending-timers index without settled timers; retention
    finds processed events and settled timers by age."""
    bind = op.get_bind()
    # Earlier releases wrote a dead letter per failed attempt: keep the newest of each message.
    bind.execute(sa.text(
        "DELETE FROM dead_letters WHERE event_id IS NOT NULL AND id NOT IN "
        "(SELECT max(id) FROM dead_letters WHERE event_id IS NOT NULL GROUP BY consumer, event_id)"))
    bind.execute(sa.text("UPDATE dead_letters SET event_id = 'dead-letter:' || id WHERE event_id IS NULL"))
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_dead_letters_consumer_event_id', ['consumer', 'event_id'])
    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.create_index('ix_processed_events_processed_at', ['processed_at'], unique=False)
    pending = sa.text('fired_at IS NULL AND cancelled_at IS NULL')
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.drop_index('ix_timers_pending')
        batch_op.create_index('ix_timers_pending', ['due_at', 'id'], unique=False,
                              postgresql_where=pending, sqlite_where=pending)
        batch_op.create_index('ix_timers_fired_at', ['fired_at'], unique=False)
        batch_op.create_index('ix_timers_cancelled_at', ['cancelled_at'], unique=False)


def downgrade_0002() -> None:
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.drop_index('ix_timers_cancelled_at')
        batch_op.drop_index('ix_timers_fired_at')
        batch_op.drop_index('ix_timers_pending')
        batch_op.create_index('ix_timers_pending', ['fired_at', 'due_at'], unique=False)
    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.drop_index('ix_processed_events_processed_at')
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.drop_constraint('uq_dead_letters_consumer_event_id', type_='unique')
