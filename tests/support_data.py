"""A small directory for support-staff tests: two schools, « NOËL Camille » blocked in
August with a class and a warning, and « BÉRANGER Zoé » refused by the import."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import (
    ClassMembership,
    ClassRole,
    Establishment,
    EstablishmentKind,
    Person,
    PersonKind,
    PersonProfile,
    Profile,
    Project,
    SchoolClass,
    SchoolYear,
)
from yearchange_tui.importing.models import AafImport, AafReject

REFUSED_XML = ('<addRequest><identifier><id>J-REFUSED</id></identifier><attributes>'
               '<attr name="sn"><value>BÉRANGER</value></attr>'
               '<attr name="givenName"><value>Zoé</value></attr>'
               '<attr name="ENTEleveClasses"><value>10003$6A</value></attr>'
               '</attributes></addRequest>')


def fill_support_database(database_url: str,
                          block: tuple[dt.date, dt.date] = (dt.date(2026, 8, 20),
                                                            dt.date(2026, 9, 1))) -> Database:
    """The database, filled; ``block`` is the project's access-block window."""
    database = open_database(database_url)
    with database.session() as session:
        project = Project(code="ENT-X", name="ENT X", ent_name="ENT Exemple",
                          access_block_starts_on=block[0],
                          access_block_ends_on=block[1],
                          access_block_message="Votre espace {ent} est indisponible du {debut} "
                                               "au {fin} inclus.",
                          access_block_profiles="National_ELV,National_TUT")
        session.add(project)
        session.flush()
        school = Establishment(project_id=project.id, uai="0999001W",
                               name="Collège Émile Zola", kind=EstablishmentKind.COLLEGE)
        other = Establishment(project_id=project.id, uai="0698689V", name="Lycée du Parc",
                              kind=EstablishmentKind.LYCEE)
        session.add_all([school, other])
        session.flush()
        year = SchoolYear(start_year=2026, label="2026-2027", starts_on=dt.date(2026, 9, 1),
                          ends_on=dt.date(2027, 7, 5))
        session.add(year)
        session.flush()
        student = Person(kind=PersonKind.STUDENT, login="c.noel.J-NOEL", last_name="NOËL",
                         first_name="Camille", aaf_jointure="J-NOEL", ine="123456789AB",
                         establishment_id=school.id)
        teacher = Person(kind=PersonKind.TEACHER, login="p.martin.J-T", last_name="MARTIN",
                         first_name="Paul", aaf_jointure="J-T", establishment_id=other.id)
        session.add_all([student, teacher])
        session.flush()
        session.add(PersonProfile(person_id=student.id, establishment_id=school.id,
                                  profile=Profile.STUDENT))
        klass = SchoolClass(establishment_id=school.id, school_year_id=year.id, code="5EME2")
        session.add(klass)
        session.flush()
        session.add(ClassMembership(class_id=klass.id, person_id=student.id,
                                    role=ClassRole.STUDENT))
        delivery = AafImport(started_at=dt.datetime(2026, 8, 18, tzinfo=dt.UTC), source="x",
                             source_kind="dossier")
        session.add(delivery)
        session.flush()
        session.add_all([
            AafReject(import_id=delivery.id, record_id="J-NOEL", kind="Eleve", uai="0999001W",
                      code="AAF-CLASSE-INCONNUE", severity="avertissement",
                      message="Classe inconnue pour l'élève J-NOEL.", action="Vérifier."),
            AafReject(import_id=delivery.id, record_id="J-REFUSED", kind="Eleve",
                      uai="0698689V", code="AAF-NAISSANCE-MANQUANTE", severity="erreur",
                      file_name="eleves.xml", line=12,
                      message="Date de naissance absente pour l'élève J-REFUSED (BÉRANGER).",
                      action="À corriger dans SIECLE par l'établissement.",
                      raw_xml=REFUSED_XML)])
    return database


def plant_last_year_class(database: Database) -> None:
    """Last year (2025-2026) NOËL was already in 5EME2: this year's 5EME2 looks like last
    year's (the step-4 « classe N-1 probable » detection)."""
    with database.session() as session:
        student = session.scalars(select(Person).where(Person.aaf_jointure == "J-NOEL")).one()
        last_year = SchoolYear(start_year=2025, label="2025-2026",
                               starts_on=dt.date(2025, 9, 1), ends_on=dt.date(2026, 7, 4))
        session.add(last_year)
        session.flush()
        klass = SchoolClass(establishment_id=student.establishment_id,
                            school_year_id=last_year.id, code="5EME2")
        session.add(klass)
        session.flush()
        session.add(ClassMembership(class_id=klass.id, person_id=student.id,
                                    role=ClassRole.STUDENT))
