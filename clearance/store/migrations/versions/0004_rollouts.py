"""Rollouts: the controller's state, so a restarted controller resumes or safely aborts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ACTIVE = sa.text("phase IN ('running', 'paused')")


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("env", sa.String(64), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("stable_digest", sa.String(80), nullable=True),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("step_started", sa.Float, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("request", sa.Text, nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    # At most one active rollout per environment and service, enforced by the database.
    op.create_index(
        "ux_rollouts_active",
        "rollouts",
        ["env", "service"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("ux_rollouts_active", table_name="rollouts")
    op.drop_table("rollouts")
