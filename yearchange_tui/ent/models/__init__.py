"""The ENT data model the change-over operates on (SQLAlchemy 2.x, typed).

Importing this package registers every table on :data:`Base.metadata`.
"""

from yearchange_tui.ent.base import Base
from yearchange_tui.ent.models.directory import AddressBookEntry, Photo
from yearchange_tui.ent.models.enums import (
    ArchiveRubric,
    AttendanceKind,
    ClassRole,
    EstablishmentKind,
    FolderKind,
    GroupKind,
    GroupLifetime,
    ImportSource,
    MessageArchivePolicy,
    PeriodKind,
    PersonKind,
    Profile,
    RubricKind,
    RubricRole,
    TrashReason,
)
from yearchange_tui.ent.models.groups import (
    ClassMembership,
    Group,
    GroupManager,
    GroupMembership,
    SchoolClass,
)
from yearchange_tui.ent.models.imports import CredentialsFile, ImportReport
from yearchange_tui.ent.models.messaging import (
    Message,
    MessageAttachment,
    MessageCopy,
    MessageFolder,
)
from yearchange_tui.ent.models.people import Person, PersonProfile, StudentRelative
from yearchange_tui.ent.models.rubrics import (
    Document,
    Rubric,
    RubricRight,
    StoredFile,
    TrashEntry,
)
from yearchange_tui.ent.models.school_life import (
    Alternation,
    Assessment,
    AttendanceEvent,
    ClassCouncil,
    Course,
    CourseReplacement,
    EndOfCycleReport,
    Epi,
    EpiMember,
    Grade,
    HeadTeacher,
    MailMerge,
    OpeningDates,
    Period,
    Punishment,
    ReportCard,
    ReportCardLine,
    ReportCardTemplate,
    RollCall,
    Sanction,
    SkillAssessment,
    TeachingService,
)
from yearchange_tui.ent.models.structure import Establishment, Mef, Project, SchoolYear, Subject
from yearchange_tui.ent.models.textbook import (
    ActivityAttachment,
    ActivityDistribution,
    BinderActivity,
    Homework,
    TextbookAttachment,
    TextbookSession,
)

ENT_MODELS: tuple[type[Base], ...] = (
    Project, SchoolYear, Establishment, Subject, Mef,
    Person, PersonProfile, StudentRelative,
    SchoolClass, ClassMembership, Group, GroupMembership, GroupManager,
    Rubric, RubricRight, TrashEntry, StoredFile, Document,
    TextbookSession, Homework, TextbookAttachment,
    BinderActivity, ActivityDistribution, ActivityAttachment,
    Period, OpeningDates, Alternation, TeachingService, Course, CourseReplacement,
    RollCall, AttendanceEvent, Assessment, Grade, SkillAssessment,
    ReportCardTemplate, ReportCard, ReportCardLine, EndOfCycleReport,
    Sanction, Punishment, Epi, EpiMember, ClassCouncil, HeadTeacher, MailMerge,
    MessageFolder, Message, MessageCopy, MessageAttachment,
    AddressBookEntry, Photo, ImportReport, CredentialsFile,
)
"""Every table of the ENT model, in an order where parents come before children."""

__all__ = [name for name in dir() if not name.startswith("_")]
