"""Write the hand-made timetable samples of this folder (run from the repository root).

    python sample_data/timetable/make_samples.py

One fictional collège, 0999001W « COLLÈGE JEAN MOULIN » (the collège of the AAF
samples), school year 2026-2027, described once below and written in the three real
formats: the STS-web pair (``sts/``), an UnDeuxTemps ZIP (``udt/``), the clear EDT
payload and its encrypted containers, one per EDT version row of the policy
(``edt/``), and hostile or broken files (``refuses/``). The expected outcome of each
file is documented in ``sample_data/README.md`` and checked by
``tests/test_timetable_samples.py``.

The EDT containers are encrypted for the partner « ENTEXEMPLE » with the **test** key
pair ``cle-partenaire-test.pem`` / ``.pub.pem`` (generated for these samples, never
used anywhere else). Containers carry random AES keys: running this script again
rewrites them with other bytes and the same content.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

from lxml import etree

HERE = Path(__file__).resolve().parent
UAI = "0999001W"
YEAR = 2026
WEEK1 = dt.date(2026, 8, 31)  # Monday of the rentrée week
HOLIDAY_WEEK_NUMBERS = {8, 9, 17, 18, 25, 26, 32, 33}  # counted from WEEK1 (1 = rentrée)
LAST_WEEK_NUMBER = 44
PARTNER = "ENTEXEMPLE"

SUBJECTS = [  # (EDT ident, short code, BCN code, label)
    ("1", "FRANC", "020700", "FRANCAIS"),
    ("2", "MATHS", "061300", "MATHEMATIQUES"),
    ("3", "AGL1", "030201", "ANGLAIS LV1"),
    ("4", "EPS", "100100", "EDUCATION PHYSIQUE ET SPORTIVE"),
    ("5", "ASTRO", "999999", "ASTRONOMIE"),  # not in the directory: EDT-MATIERE-INCONNUE
]
TEACHERS = [  # (ident, STS id, last, first, birth)
    ("1", "2000101", "DUMAS", "Claire", "1980-04-12"),
    ("2", "2000102", "NOËL", "Bruno", "1972-09-03"),
    ("3", "2000104", "VIRGILE", "Marc", "1985-06-21"),
    ("4", "2000106", "MARTIN", "Sophie", "1979-03-03"),
    ("5", "2999999", "INCONNU", "Paul", "1990-01-01"),  # not in the directory
]
CLASSES = [("1", "6A"), ("2", "6B"), ("3", "5A"), ("4", "3A"),
           ("5", "4Z")]  # 4Z: last year's class, not in the N+1 directory
GROUP = ("LAT5", "LATIN 5E", "5A")
STUDENTS = [  # (ident, INE, last, first, birth, class, in LAT5)
    ("1", "100000101AA", "ARNAUD", "Léa", "2015-02-03", "6A", False),
    ("2", "100000102BB", "BLANC", "Hugo", "2015-05-21", "6A", False),
    ("3", "100000103CC", "CARON", "Inès", "2015-08-30", "6B", False),
    ("4", "100000104DD", "DUPONT", "Jules", "2014-01-17", "5A", True),
    ("5", "100000105EE", "ETIENNE", "Lina", "2014-06-09", "5A", True),
    ("6", "100000106FF", "FABRE", "Nolan", "2012-11-02", "3A", False),
    ("7", "100000199ZZ", "FANTOME", "Alix", "2014-04-04", "5A", True),  # not in the directory
]
ROOMS = ["S101", "S102", "GYM"]
# (day, start "HH:MM", hours, subject short, teacher ident, class code or "", group or "",
#  room, weeks "H" / "A" / "B")
COURSES = [
    (1, "08:00", 1, "FRANC", "1", "6A", "", "S101", "H"),
    (4, "10:00", 1, "FRANC", "1", "6A", "", "S101", "H"),
    (2, "09:00", 1, "MATHS", "2", "6A", "", "S102", "H"),
    (1, "10:00", 2, "MATHS", "2", "6B", "", "S102", "A"),
    (1, "10:00", 2, "AGL1", "3", "6B", "", "S101", "B"),
    (3, "08:00", 1, "FRANC", "1", "5A", "", "S101", "H"),
    (5, "14:00", 2, "EPS", "4", "3A", "", "GYM", "H"),
    (4, "14:00", 1, "FRANC", "1", "", "LAT5", "S102", "H"),
    # known rejects
    (5, "08:00", 1, "MATHS", "2", "4Z", "", "S102", "H"),   # EDT-CLASSE-INCONNUE
    (5, "10:00", 1, "EPS", "5", "6A", "", "GYM", "H"),      # EDT-ENSEIGNANT-INCONNU
    (4, "16:00", 1, "ASTRO", "3", "6B", "", "S101", "H"),   # EDT-MATIERE-INCONNUE
]


def teaching_numbers(weeks: str) -> list[int]:
    """Week numbers (1 = rentrée week) of a course held every week, week A or week B."""
    teaching = [n for n in range(1, LAST_WEEK_NUMBER + 1) if n not in HOLIDAY_WEEK_NUMBERS]
    return {"H": teaching, "A": teaching[0::2], "B": teaching[1::2]}[weeks]


def monday(number: int) -> dt.date:
    return WEEK1 + dt.timedelta(weeks=number - 1)


def mask(weeks: str) -> str:
    value = 0
    for number in teaching_numbers(weeks):
        value |= 1 << number
    return str(value)


def minutes(clock: str) -> int:
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


def place_of(clock: str) -> int:
    return (minutes(clock) - 8 * 60) // 30


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"écrit {path.relative_to(HERE)} ({len(data)} octets)")


def tostring(root: etree._Element, encoding: str = "UTF-8") -> bytes:
    etree.indent(root, "  ")
    return etree.tostring(root, xml_declaration=True, encoding=encoding) + b"\n"


def sub(parent: etree._Element, tag: str, text: str | None = None, **attributes: str
        ) -> etree._Element:
    element = etree.SubElement(parent, tag, {k: v for k, v in attributes.items()})
    if text is not None:
        element.text = text
    return element


# -- EDT clear payload -------------------------------------------------------------------


EDT_NS = "http://www.index-education.com/exportemploidutemps"


def edt_payload() -> bytes:
    def e(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
        return etree.SubElement(parent, f"{{{EDT_NS}}}{tag}", attributes)

    root = etree.Element(f"{{{EDT_NS}}}ExportEmploiDuTemps", nsmap={None: EDT_NS},
                         Version="1.1", UAI=UAI)
    e(root, "AnneeScolaire", DateDebut=f"{YEAR}-09-01", DateFin=f"{YEAR + 1}-08-31",
      DatePremierJourSemaine1=WEEK1.isoformat())
    grid = e(root, "GrilleHoraire", NombrePlacesParJour="20", DureePlace="30")
    days = e(grid, "JoursOuvres")
    for day in range(1, 6):
        e(days, "Jour").text = str(day)
    places = e(grid, "PlacesParJour")
    for number in range(20):
        start = 8 * 60 + 30 * number
        e(places, "Place", Numero=str(number),
          LibelleHeureDebut=f"{start // 60:02d}:{start % 60:02d}:00",
          LibelleHeureFin=f"{(start + 30) // 60:02d}:{(start + 30) % 60:02d}:00")
    subjects = e(root, "Matieres")
    subject_ids = {}
    for ident, short, _bcn, label in SUBJECTS:
        e(subjects, "Matiere", Ident=ident, Code=short, Libelle=label)
        subject_ids[short] = ident
    teachers = e(root, "Professeurs")
    for ident, sts_id, last, first, birth in TEACHERS:
        attributes = {"Ident": ident, "Nom": last, "Prenom": first, "DateNaissance": birth}
        if ident != "3":  # VIRGILE has no IDSTS: matched by name and birth date
            attributes["IDSTS"] = sts_id
        e(teachers, "Professeur", **attributes)
    classes = e(root, "Classes")
    class_ids = {}
    for ident, code in CLASSES:
        element = e(classes, "Classe", Ident=ident, Nom=code)
        class_ids[code] = ident
        if code == GROUP[2]:
            e(element, "PartieDeClasse", Ident="31")
    groups = e(root, "Groupes")
    group = e(groups, "Groupe", Ident="1", Nom=GROUP[0])
    e(group, "PartieDeClasse", Ident="31")
    rooms = e(root, "Salles")
    for number, room in enumerate(ROOMS, start=1):
        e(rooms, "Salle", Ident=str(number), Nom=room)
    students = e(root, "Eleves")
    for ident, ine, last, first, birth, class_code, latin in STUDENTS:
        element = e(students, "Eleve", Ident=ident, Nom=last, Prenom=first,
                    DateNaissance=birth, Sexe="Feminin", NumeroNational=ine)
        e(element, "Classe", Ident=class_ids[class_code], DateEntree=f"{YEAR}-09-01",
          DateSortie=f"{YEAR + 1}-08-31")
        if latin:
            e(element, "PartieDeClasse", Ident="31", DateEntree=f"{YEAR}-09-01",
              DateSortie=f"{YEAR + 1}-08-31")
    courses = e(root, "Cours")

    def course(day: int, start: str, hours: int, subject: str | None,
               resources: list[tuple[str, str, str]]) -> None:
        element = e(courses, "Cours", Jour=str(day), NumeroPlaceDebut=str(place_of(start)),
                    NombrePlaces=str(hours * 2))
        if subject is not None:
            e(element, "Matiere", Ident=subject)
        for kind, ident, weeks in resources:
            e(element, kind, Ident=ident, Semaines=mask(weeks))

    for day, start, hours, subject, teacher, class_code, group_code, room, weeks in COURSES:
        audience = ("Groupe", "1", weeks) if group_code else ("Classe", class_ids[class_code],
                                                               weeks)
        course(day, start, hours, subject_ids[subject],
               [("Professeur", teacher, weeks), audience,
                ("Salle", str(ROOMS.index(room) + 1), weeks)])
    # EDT-specific rejects
    course(2, "14:00", 1, "4", [("Classe", class_ids["5A"], "H"), ("Salle", "3", "H")])
    # ↑ no teacher: EDT-COURS-SANS-ENSEIGNANT (the service is created without a teacher)
    course(3, "10:00", 1, "2", [("Professeur", "2", "H"), ("Classe", class_ids["6B"], "H"),
                                ("Salle", "9", "H")])  # EDT-REFERENCE-INCONNUE (room 9)
    course(2, "17:30", 2, "1", [("Professeur", "1", "H"), ("Classe", class_ids["6B"], "H")])
    # ↑ places 19-22 of a 20-place grid: EDT-COURS-HORS-GRILLE
    course(3, "11:00", 1, "3", [("Professeur", "3", "H"), ("Salle", "1", "H")])
    # ↑ no class nor group: EDT-COURS-INCOMPLET
    return tostring(root)


# -- EDT containers ------------------------------------------------------------------------


EDT_CONTAINER_YEARS = (2017, 2018, 2019, 2020, 2021, 2023)


def edt_containers(payload: bytes) -> None:
    from yearchange_tui.timetable.edt import seal_container

    public = (HERE / "cle-partenaire-test.pub.pem").read_bytes()
    for year in EDT_CONTAINER_YEARS:
        data = seal_container(
            payload, [(PARTNER, public)], logiciel=f"EDT Monoposte-EDT {year} - 1.0.0",
            uai=UAI, establishment_name="COLLEGE JEAN MOULIN", postal_city="69000 LYON",
            created_at=dt.datetime(YEAR, 8, 25, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))))
        write(HERE / "edt" / f"Edt_To_{PARTNER}_{UAI}_EDT{year}.xml", data)


def make_keys() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    for name in ("cle-partenaire-test", "cle-autre-partenaire-test"):
        if (HERE / f"{name}.pem").exists():
            continue
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write(HERE / f"{name}.pem", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        write(HERE / f"{name}.pub.pem", key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


# -- STS-web ---------------------------------------------------------------------------------


def sts_pair() -> tuple[bytes, bytes]:
    sts = etree.Element("STS_EDT")
    parameters = sub(sts, "PARAMETRES")
    uaj = sub(parameters, "UAJ", CODE=UAI)
    sub(uaj, "SIGLE", "CLG")
    sub(uaj, "DENOM_PRINC", "COLLEGE")
    sub(uaj, "DENOM_COMPL", "JEAN MOULIN")
    year = sub(parameters, "ANNEE_SCOLAIRE", ANNEE=str(YEAR))
    sub(year, "DATE_DEBUT", f"{YEAR}-09-01")
    sub(year, "DATE_FIN", f"{YEAR + 1}-08-31")
    nomenclatures = sub(sts, "NOMENCLATURES")
    subjects = sub(nomenclatures, "MATIERES")
    for _ident, short, bcn, label in SUBJECTS:
        subject = sub(subjects, "MATIERE", CODE=bcn)
        sub(subject, "CODE_GESTION", short)
        sub(subject, "LIBELLE_COURT", label[:20])
        sub(subject, "LIBELLE_LONG", label)
    data = sub(sts, "DONNEES")
    individuals = sub(data, "INDIVIDUS")
    for _ident, sts_id, last, first, birth in TEACHERS:
        individual = sub(individuals, "INDIVIDU", ID=sts_id, TYPE="epp")
        sub(individual, "NOM_USAGE", last)
        sub(individual, "PRENOM", first)
        sub(individual, "DATE_NAISSANCE", birth)
        sub(individual, "FONCTION", "ENS")
    structure = sub(data, "STRUCTURE")
    bcn = {short: code for _i, short, code, _l in SUBJECTS}
    sts_ids = {ident: sts_id for ident, sts_id, *_rest in TEACHERS}

    def services(parent: etree._Element, courses: list[tuple]) -> None:
        services_element = sub(parent, "SERVICES")
        seen: dict[tuple[str, str], float] = {}
        for course in courses:
            hours = course[2] / (2 if course[8] != "H" else 1)
            key = (course[3], course[4])
            seen[key] = seen.get(key, 0.0) + hours
        for (subject, teacher), hours in seen.items():
            service = sub(services_element, "SERVICE", CODE_MATIERE=bcn[subject],
                          CODE_MOD_COURS="CG")
            sub(service, "HEURES_STRUCTURE", f"{hours:.2f}")
            teachers_element = sub(service, "ENSEIGNANTS")
            sub(sub(teachers_element, "ENSEIGNANT", TYPE="epp", ID=sts_ids[teacher]),
                "HEURES_AGENT", f"{hours:.2f}")

    divisions = sub(structure, "DIVISIONS")
    for _ident, code in CLASSES:
        division = sub(divisions, "DIVISION", CODE=code)
        sub(division, "LIBELLE_LONG", code)
        services(division, [c for c in COURSES if c[5] == code])
    groups = sub(structure, "GROUPES")
    group = sub(groups, "GROUPE", CODE=GROUP[0])
    sub(group, "LIBELLE_LONG", GROUP[1])
    belonging = sub(group, "DIVISIONS_APPARTENANCE")
    sub(belonging, "DIVISION_APPARTENANCE", CODE=GROUP[2])
    services(group, [c for c in COURSES if c[6] == GROUP[0]])

    emp = etree.Element("EDT_STS")
    parameters = sub(emp, "PARAMETRES")
    sub(parameters, "UAJ", UAI)
    sub(parameters, "ANNEE_SCOLAIRE", str(YEAR))
    sub(parameters, "APPLICATION_SOURCE", "EDITEUR_PRIVE")
    data = sub(emp, "DONNEES")
    alternations = sub(data, "ALTERNANCES")
    for code, label, weeks in (("H", "Hebdomadaire", "H"), ("SA", "Semaine A", "A"),
                               ("SB", "Semaine B", "B")):
        alternation = sub(alternations, "ALTERNANCE", CODE=code)
        sub(alternation, "LIBELLE_COURT", label)
        sub(alternation, "LIBELLE_LONG", label)
        semaines = sub(alternation, "SEMAINES")
        for number in teaching_numbers(weeks):
            sub(semaines, "DATE_DEBUT_SEMAINE", monday(number).isoformat())
    structure = sub(data, "STRUCTURE")
    alternation_codes = {"H": "H", "A": "SA", "B": "SB"}

    def attached(parent: etree._Element, courses: list[tuple], extra: list[tuple] = ()) -> None:
        services_element = sub(parent, "SERVICES")
        keys = []
        for course in list(courses) + list(extra):
            if (course[3], course[4]) not in keys:
                keys.append((course[3], course[4]))
        for subject, teacher in keys:
            service = sub(services_element, "SERVICE", CODE_MATIERE=bcn[subject],
                          CODE_MOD_COURS="CG")
            teachers_element = sub(service, "ENSEIGNANTS")
            teacher_element = sub(teachers_element, "ENSEIGNANT", TYPE="epp", ID=sts_ids[teacher])
            rattached = sub(teacher_element, "COURS_RATTACHES")
            for course in list(courses) + list(extra):
                if (course[3], course[4]) != (subject, teacher):
                    continue
                day, start, hours, weeks = course[0], course[1], course[2], course[8]
                element = sub(rattached, "COURS")
                sub(element, "CODE_ALTERNANCE", course[9] if len(course) > 9
                    else alternation_codes[weeks])
                sub(element, "JOUR", course[10] if len(course) > 10 else str(day))
                sub(element, "HEURE_DEBUT", start.replace(":", ""))
                sub(element, "DUREE", f"{hours:02d}00")
                sub(element, "CODE_SALLE", course[7])

    divisions = sub(structure, "DIVISIONS")
    for _ident, code in CLASSES:
        division = sub(divisions, "DIVISION", CODE=code)
        extra: list[tuple] = []
        if code == "6A":
            extra = [(2, "16:00", 1, "MATHS", "2", "6A", "", "S102", "H", "SX")]
            # ↑ unknown alternation SX: EDT-ALTERNANCE-INCONNUE (imported every week)
        if code == "3A":
            extra = [(5, "16:00", 1, "EPS", "4", "3A", "", "GYM", "H", "H", "9")]
            # ↑ JOUR 9: EDT-COURS-HORS-GRILLE
        attached(division, [c for c in COURSES if c[5] == code], extra)
    groups = sub(structure, "GROUPES")
    group = sub(groups, "GROUPE", CODE=GROUP[0])
    belonging = sub(group, "DIVISIONS_APPARTENANCE")
    sub(belonging, "DIVISION_APPARTENANCE", CODE=GROUP[2])
    attached(group, [c for c in COURSES if c[6] == GROUP[0]])
    return tostring(sts, "ISO-8859-15"), tostring(emp, "ISO-8859-15")


# -- UnDeuxTemps -----------------------------------------------------------------------------


def udt_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}

    def doc(name: str, root_tag: str, rows: list[tuple[str, dict[str, str]]],
            texts: list[tuple[str, str]] = ()) -> None:
        root = etree.Element(root_tag)
        for tag, text in texts:
            sub(root, tag, text)
        for tag, attributes in rows:
            sub(root, tag, **attributes)
        files[name] = tostring(root)

    teaching = teaching_numbers("H")
    iso = {number: monday(number).isocalendar()[1] for number in teaching}
    doc("UDCal_24.xml", "calendrier", [
        ("fermeture", {"debut": (monday(8) - dt.timedelta(days=2)).strftime("%d/%m/%Y"),
                       "fin": (monday(9) + dt.timedelta(days=6)).strftime("%d/%m/%Y"),
                       "libelle": "Toussaint"}),
        ("fermeture", {"debut": (monday(17) - dt.timedelta(days=2)).strftime("%d/%m/%Y"),
                       "fin": (monday(18) + dt.timedelta(days=6)).strftime("%d/%m/%Y"),
                       "libelle": "Noël"}),
        ("fermeture", {"debut": (monday(25) - dt.timedelta(days=2)).strftime("%d/%m/%Y"),
                       "fin": (monday(26) + dt.timedelta(days=6)).strftime("%d/%m/%Y"),
                       "libelle": "Hiver"}),
        ("fermeture", {"debut": (monday(32) - dt.timedelta(days=2)).strftime("%d/%m/%Y"),
                       "fin": (monday(33) + dt.timedelta(days=6)).strftime("%d/%m/%Y"),
                       "libelle": "Printemps"})],
        [("annee", str(YEAR)), ("debut_eleve", f"01/09/{YEAR}"),
         ("fin_eleve", (monday(LAST_WEEK_NUMBER) + dt.timedelta(days=5)).strftime("%d/%m/%Y"))])
    doc("UDCal_00.xml", "parametres", [("init", {"premiere_semaine_ISO": "36",
                                                 "duree_seq": "60"})])
    doc("semaines.xml", "semaines", [("semaine", {"num": str(iso[n])}) for n in teaching])
    doc("UDCal_03.xml", "salles", [("salle", {"code": r, "nom": r}) for r in ROOMS])
    doc("UDCal_04.xml", "profs", [("prof", {
        "code": ident, "nom": last, "prenom": first,
        "date_naissance": dt.date.fromisoformat(birth).strftime("%d/%m/%Y"),
        "epj": sts_id}) for ident, sts_id, last, first, birth in TEACHERS])
    doc("UDCal_05.xml", "matieres", [("mat", {"code": short, "libelle": label,
                                              "code_gep1": bcn if short != "ASTRO" else ""})
                                     for _i, short, bcn, label in SUBJECTS])
    doc("UDCal_07.xml", "demi_sequences", [("demi_seq", {
        "code": str(number), "code_jour": str(day), "code_site": "1",
        "hre_deb": f"{(480 + 30 * (number - 1)) // 60:02d}h{(480 + 30 * (number - 1)) % 60:02d}",
        "hre_fin": f"{(510 + 30 * (number - 1)) // 60:02d}h{(510 + 30 * (number - 1)) % 60:02d}"})
        for day in range(1, 6) for number in range(1, 21)])
    doc("UDCal_08.xml", "divisions", [("div", {"code": code, "code_gep": code, "libelle": code})
                                      for _i, code in CLASSES])
    doc("UDCal_10.xml", "eleves", [("eleve", {
        "code": ident, "nom": last, "prenom": first,
        "naissance": dt.date.fromisoformat(birth).strftime("%d/%m/%Y")})
        for ident, _ine, last, first, birth, _c, _l in STUDENTS])
    doc("UDCal_11.xml", "fiches", [("fiche", {"code": f"{(day - 1) * 20 + n:03d}",
                                              "jour": str(day), "demi_seq": str(n), "site": "1"})
                                   for day in range(1, 6) for n in range(1, 21)])
    doc("UDCal_13.xml", "regroupements", [("rgpmt", {"code": "1", "nom": GROUP[0],
                                                     "code_div": GROUP[2], "code_gpe": GROUP[0],
                                                     "id": "1"})])
    doc("UDCal_19.xml", "groupes", [("gpe", {"code": GROUP[0], "code_div": GROUP[2],
                                             "code_sts": GROUP[0], "id": "1"})])
    doc("UDCal_21.xml", "appartenances", [
        ("ele_gpe", {"ele": ident, "gpe": GROUP[0] if latin else "", "code_div": class_code,
                     "semaines": "0"})
        for ident, _ine, _last, _first, _birth, class_code, latin in STUDENTS])
    doc("UDCal_23.xml", "coenseignements", [])

    def lines(weeks: set[str]) -> list[tuple[str, dict[str, str]]]:
        rows: list[tuple[str, dict[str, str]]] = []
        counters: dict[str, int] = {}
        for day, start, hours, subject, teacher, class_code, group, room, course_weeks in COURSES:
            if course_weeks not in weeks:
                continue
            first = place_of(start) + 1
            for half in range(first, first + hours * 2):
                fiche = f"{(day - 1) * 20 + half:03d}"
                counters[fiche] = counters.get(fiche, 0) + 1
                rows.append(("ligfiche", {
                    "code": f"{fiche}{counters[fiche]:03d}", "fic": fiche,
                    "div": class_code or GROUP[2], "mat": subject, "prof": teacher,
                    "salle": room, "gpe": group, "rgpmt": "1" if group else "0",
                    "idgpe": "1" if group else ""}))
        return rows

    doc("UDCal_12.xml", "lignes_fiches", lines({"H", "A", "B"}))
    for position, number in enumerate(teaching):
        doc(f"UDCal_12_{iso[number]:02d}.xml", "lignes_fiches",
            lines({"H", "A" if position % 2 == 0 else "B"}))
    return files


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(YEAR, 8, 25, 10, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    return buffer.getvalue()


# -- refused files ---------------------------------------------------------------------------


def refused(payload: bytes, udt: dict[str, bytes]) -> None:
    from yearchange_tui.timetable.edt import read_container, seal_container

    out = HERE / "refuses"
    write(out / "entites_internes.xml", b"""<?xml version="1.0"?>
<!DOCTYPE STS_EDT [
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<STS_EDT><PARAMETRES><UAJ CODE="0999001W"><SIGLE>&c;</SIGLE></UAJ></PARAMETRES></STS_EDT>
""")
    write(out / "entite_externe.xml", b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE ExportEmploiDuTemps [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>
<ExportEmploiDuTemps Version="1.1" UAI="0999001W"><Matieres><Matiere Ident="1" Code="&secret;"/></Matieres></ExportEmploiDuTemps>
""")
    write(out / "entite_inconnue.xml", payload.replace(b'Libelle="FRANCAIS"',
                                                        b'Libelle="FRAN&Ccedil;AIS"'))
    write(out / "tronque.xml", payload[: len(payload) // 2])
    write(out / "binaire.xml", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(256)))
    write(out / "encodage_faux.xml", payload.replace(b"ARNAUD", "ARNAÜD".encode("latin-1")))
    write(out / "racine_inconnue.xml", b"<?xml version=\"1.0\"?>\n<html><body>Erreur 404"
                                       b"</body></html>\n")
    traversal = io.BytesIO()
    with zipfile.ZipFile(traversal, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in udt.items():
            archive.writestr(name, data)
        archive.writestr("../../etc/cron.d/yearchange", "* * * * * root true\n")
    write(out / f"{UAI}_20260825100000_chemin_UDT.zip", traversal.getvalue())
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in udt.items():
            archive.writestr(name, data)
        archive.writestr("UDCal_12_30.xml", b"<lignes_fiches>" + b" " * (65 * 1024 * 1024))
    write(out / f"{UAI}_20260825100000_bombe_UDT.zip", bomb.getvalue())
    incomplete = {name: data for name, data in udt.items() if name != "UDCal_12.xml"}
    write(out / f"{UAI}_20260825100000_incomplet_UDT.zip", zip_bytes(incomplete))
    write(out / "pas_un_zip_UDT.zip", b"PK\x03\x04 ceci n'est pas une archive")
    public = (HERE / "cle-partenaire-test.pub.pem").read_bytes()
    other = (HERE / "cle-autre-partenaire-test.pub.pem").read_bytes()
    sealed = seal_container(payload, [(PARTNER, public)], logiciel="EDT Monoposte-EDT 2020 - 1.0.0",
                            uai=UAI, created_at=dt.datetime(YEAR, 8, 25, 10, 0, tzinfo=dt.UTC))
    container = read_container(sealed, "x")
    altered = sealed.replace(container._verification.encode(),
                             b"AAAA" + container._verification.encode()[4:])
    write(out / "conteneur_altere.xml", altered)
    write(out / "conteneur_autre_cle.xml", seal_container(
        payload, [(PARTNER, other)], logiciel="EDT Monoposte-EDT 2020 - 1.0.0", uai=UAI,
        created_at=dt.datetime(YEAR, 8, 25, 10, 0, tzinfo=dt.UTC)))
    write(out / "conteneur_autre_partenaire.xml", seal_container(
        payload, [("AUTREENT", public)], logiciel="EDT Monoposte-EDT 2020 - 1.0.0", uai=UAI,
        created_at=dt.datetime(YEAR, 8, 25, 10, 0, tzinfo=dt.UTC)))


def main() -> None:
    make_keys()
    payload = edt_payload()
    write(HERE / "edt" / f"Edt_To_{PARTNER}_{UAI}_Enclair.xml", payload)
    edt_containers(payload)
    sts_emp, emp_sts = sts_pair()
    write(HERE / "sts" / f"sts_emp_{UAI}_{YEAR}.xml", sts_emp)
    write(HERE / "sts" / f"emp_sts_{UAI}_{YEAR}.xml", emp_sts)
    udt = udt_files()
    write(HERE / "udt" / f"{UAI}_20260825100000_UDT.zip", zip_bytes(udt))
    refused(payload, udt)


if __name__ == "__main__":
    main()
