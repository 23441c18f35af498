"""Enumerations of the ENT model. Values are stable strings stored in the database."""

from __future__ import annotations

import enum


class EstablishmentKind(enum.StrEnum):
    """Kind of establishment; collèges and lycées close on different dates."""

    COLLEGE = "college"
    LYCEE = "lycee"
    OTHER = "other"


class PersonKind(enum.StrEnum):
    """What a person is in the directory."""

    STUDENT = "student"
    RELATIVE = "relative"
    TEACHER = "teacher"
    STAFF = "staff"


class Profile(enum.StrEnum):
    """ENT profile of a person in an establishment (SDET national profiles)."""

    STUDENT = "National_ELV"
    RELATIVE = "National_TUT"
    TEACHER = "National_ENS"
    DOCUMENTALIST = "National_DOC"
    DIRECTION = "National_DIR"
    EDUCATION = "National_EVS"
    NON_TEACHING = "National_ETA"


class MessageArchivePolicy(enum.StrEnum):
    """Per-user policy for the "Archivés" folder of the internal messaging."""

    SCHOOL_YEAR = "school_year"  # archived messages are deleted at step 3
    UNLIMITED = "unlimited"


class GroupKind(enum.StrEnum):
    """Kinds of groups."""

    ADMINS = "admins"  # the per-establishment "administrateurs" group
    OPTION = "option"  # option group created by a timetable import
    FREE = "free"  # free group created in the ENT by a user
    AAF = "aaf"  # pedagogic group delivered by the AAF


class GroupLifetime(enum.StrEnum):
    """Lifetime of a free group."""

    UNLIMITED = "unlimited"
    SCHOOL_YEAR = "school_year"


class ClassRole(enum.StrEnum):
    """Role of a person in a class."""

    STUDENT = "student"
    TEACHER = "teacher"


class RubricKind(enum.StrEnum):
    """Kinds of rubrics (portal sections)."""

    CLASS = "class"
    TEMPORARY = "temporary"
    REGULAR = "regular"
    ARCHIVE = "archive"
    DOCUMENT_FOLDER = "document_folder"  # a user's porte-documents


class ArchiveRubric(enum.StrEnum):
    """The archive rubrics of step 2, with their exact French names (seed §6.2)."""

    TEXTBOOKS = "Archives des cahiers de textes"
    ROLL_CALLS = "Archives des registres d'appel"
    GRADE_REPORTS = "Archives des relevés d'évaluations"
    SKILLS = "Archivage des relevés de compétences"
    REPORT_CARDS = "Archives des bulletins périodiques"
    END_OF_CYCLE = "Archivage des bilans de fin de cycle"
    PUNISHMENTS = "Archives des punitions"
    EPI = "Archive des EPI"
    ABSENCE_STATISTICS = "Archives des statistiques d'absences"


class RubricRole(enum.StrEnum):
    """Roles on a rubric."""

    MANAGER = "gestionnaire"
    VISITOR = "visiteur"
    WRITER = "redacteur"
    PUBLISHER = "redacteur_mise_en_ligne"
    MODERATOR = "moderateur"


class TrashReason(enum.StrEnum):
    """Why an item is in the establishment trash."""

    USER = "user"  # put there by a user during the year
    YEAR_ARCHIVE = "year_archive"  # moved there by step 2 of a change-over


class AttendanceKind(enum.StrEnum):
    """Absence, late arrival or early departure."""

    ABSENCE = "absence"
    LATE = "late"
    DEPARTURE = "departure"


class PeriodKind(enum.StrEnum):
    """Trimesters or semesters."""

    TRIMESTER = "trimester"
    SEMESTER = "semester"


class FolderKind(enum.StrEnum):
    """Message folders."""

    INBOX = "inbox"
    SENT = "sent"
    ARCHIVED = "archived"  # the « Archivés » folder
    CUSTOM = "custom"


class ImportSource(enum.StrEnum):
    """Kinds of import reports."""

    AAF = "aaf"
    CSV = "csv"
    TIMETABLE = "timetable"
