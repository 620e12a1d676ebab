"""The officer console (issue 15): the certificates officers draft and issue, their
append-only audit trail, the failed-login counts behind the lockout (and the TOTP step
last accepted), the commodity of each received certificate for the inbox's filter, and the settings.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from node.store.types import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "console_certificates",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(128), nullable=False),
        sa.Column("type_code", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("import_country", sa.String(2)),
        sa.Column("commodity", sa.String(256)),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("drafted_by", sa.String(64), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column(
            "message",
            _ID,
            sa.ForeignKey("messages.id", name="fk_console_certificates_message"),
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "replaces",
            _ID,
            sa.ForeignKey("console_certificates.id", name="fk_console_certificates_replaces"),
        ),
        sa.UniqueConstraint("number", name="uq_console_certificates_number"),
    )
    op.create_index("ix_console_certificates_state", "console_certificates", ["state"])
    op.create_index("ix_console_certificates_updated", "console_certificates", ["updated_at"])
    op.create_table(
        "console_audit",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "certificate",
            _ID,
            sa.ForeignKey("console_certificates.id", name="fk_console_audit_certificate"),
        ),
        sa.Column("message", _ID, sa.ForeignKey("messages.id", name="fk_console_audit_message")),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_console_audit_certificate", "console_audit", ["certificate"])
    op.create_index("ix_console_audit_message", "console_audit", ["message"])
    op.create_table(
        "console_logins",
        sa.Column("user", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until", UtcDateTime()),
        sa.Column("last_failure", UtcDateTime()),
        sa.Column("totp_step", sa.BigInteger),
        sa.Column("language", sa.String(8)),
    )
    op.create_table(
        "console_settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "console_received",
        sa.Column(
            "message",
            _ID,
            sa.ForeignKey("messages.id", name="fk_console_received_message"),
            primary_key=True,
        ),
        sa.Column("commodity", sa.String(256)),
    )


def downgrade() -> None:
    op.drop_table("console_received")
    op.drop_table("console_settings")
    op.drop_table("console_logins")
    op.drop_table("console_audit")
    op.drop_table("console_certificates")
