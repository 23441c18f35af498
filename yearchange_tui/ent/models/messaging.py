"""Internal messaging: messages, per-user copies in folders, attachments."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yearchange_tui.ent.base import Base, enum_column, fk
from yearchange_tui.ent.models.enums import FolderKind


class MessageFolder(Base):
    """A folder of a user's mailbox; the « Archivés » folder has kind ARCHIVED."""

    __tablename__ = "message_folders"
    __table_args__ = (UniqueConstraint("owner_id", "name"),
                      Index("ix_message_folders_owner_kind", "owner_id", "kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = fk("people.id")
    kind: Mapped[FolderKind] = mapped_column(enum_column(FolderKind))
    name: Mapped[str] = mapped_column(String(100))


class Message(Base):
    """A message as written once; each recipient holds a copy in a folder."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_establishment_sent", "establishment_id", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int | None] = fk("establishments.id", nullable=True,
                                              ondelete="SET NULL")
    sender_id: Mapped[int | None] = fk("people.id", nullable=True, ondelete="SET NULL")
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # Sent by the change-over itself (notices, sanctions archive), not by a user.
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)


class MessageCopy(Base):
    """A message in one user's folder."""

    __tablename__ = "message_copies"
    __table_args__ = (UniqueConstraint("message_id", "owner_id"),
                      Index("ix_message_copies_folder", "folder_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = fk("messages.id", index=True)
    owner_id: Mapped[int] = fk("people.id", index=True)
    folder_id: Mapped[int] = fk("message_folders.id")
    is_read: Mapped[bool] = mapped_column(Boolean, default=False)


class MessageAttachment(Base):
    """A file attached to a message."""

    __tablename__ = "message_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = fk("messages.id", index=True)
    stored_file_id: Mapped[int] = fk("stored_files.id", index=True, ondelete="RESTRICT")
