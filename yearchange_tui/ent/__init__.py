"""The ENT data model and database access (SQLAlchemy 2.x); no behaviour beyond the model."""
