"""Records: the optional fields (covariates and uptime) may be NULL: a source that lacks one leaves it out.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Prometheus and OTLP sources cannot give every field (nothing exports Java CPU; CLOSE_WAIT counts
need node_exporter's tcpstat collector): such a field is missing, never invented. The forecast
targets stay NOT NULL. On PostgreSQL this only drops the constraints; SQLite cannot alter a column,
so the batch copies the table once (about as long as building its ts index took, 0008).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: The optional fields of the field table (argus.domain.metrics.FIELDS) as of this revision, and their types.
_OPTIONAL = (
    ("cpu_user_pct", sa.Float), ("cpu_sys_pct", sa.Float), ("java_cpu_pct", sa.Float), ("net_in_mb_s", sa.Float),
    ("net_out_mb_s", sa.Float), ("back_close_wait", sa.Integer), ("front_close_wait", sa.Integer),
    ("uptime_days", sa.Integer),
)


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        for name, type_ in _OPTIONAL:
            batch.alter_column(name, existing_type=type_(), nullable=True)


def downgrade() -> None:
    """Back to every field required; refused while a record lacks one (it would have to be invented or dropped)."""
    records = sa.table("records", *(sa.column(name) for name, _ in _OPTIONAL))
    lacking = sa.select(sa.func.count()).select_from(records).where(sa.or_(*(c.is_(None) for c in records.c)))
    count = op.get_bind().execute(lacking).scalar_one()
    if count:
        raise RuntimeError(f"{count} records lack an optional field: delete or complete them before downgrading")
    with op.batch_alter_table("records") as batch:
        for name, type_ in _OPTIONAL:
            batch.alter_column(name, existing_type=type_(), nullable=False)
