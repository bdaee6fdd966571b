"""SQLAlchemy models and repositories, Alembic migrations, Redis streams and leases."""
