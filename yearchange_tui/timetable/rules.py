"""Stable codes of the timetable import: files refused whole and records rejected.

Every problem a timetable import reports has a code from :data:`RULES`, with a French
explanation and a suggested action, like the AAF rules
(:mod:`yearchange_tui.aaf.rules`) and with the same severities, because timetable
rejects go to the same reject store and browser:

- ``fichier``: the file is refused whole, nothing is written (exit status 2);
- ``erreur``: the record (course, service, group) is not imported, the rest goes in;
- ``avertissement``: the record is imported, a value is ignored, or the import goes on
  with a warning (version policy);
- ``information``: nothing is refused.

Codes start with ``EDT-`` (« emploi du temps », as the seed's « bilans d'import (AAF,
CSV, EDT) ») whatever the format (EDT, UDT or STS-web).
"""

from __future__ import annotations

from collections.abc import Mapping

from yearchange_tui.importing.rules import Rule, RuleBook, Severity

__all__ = ["RULES", "RULE_BOOK", "Rule", "Severity", "explain", "rules_table",
           "severity_of"]

_NEW_EXPORT = ("Refaire l'export depuis le logiciel d'emploi du temps (EDT, UnDeuxTemps ou "
               "STS-web) ; rien n'a été importé.")
_FIX_IN_SOFTWARE = ("Corriger dans le logiciel d'emploi du temps puis refaire l'export et "
                    "l'import ; les autres cours ont été importés.")

_RULE_LIST: tuple[Rule, ...] = (
    # -- the file is refused whole ----------------------------------------------------------
    Rule("EDT-FICHIER-INTROUVABLE", Severity.FILE, "Fichier introuvable",
         "« {value} » n'existe pas ou n'est pas lisible{detail}.",
         "Vérifier le chemin du fichier d'emploi du temps."),
    Rule("EDT-FORMAT-INCONNU", Severity.FILE, "Format non reconnu",
         "« {value} » n'est pas un export d'emploi du temps reconnu ({detail}). Formats "
         "acceptés : export ENT d'EDT (Index Education, chiffré ou en clair), ZIP UnDeuxTemps "
         "(UDCal_NN.xml), fichiers STS-web sts_emp (STS_EDT) et emp_sts (EDT_STS).",
         "Déposer l'export ENT du logiciel d'emploi du temps, pas un autre export."),
    Rule("EDT-FICHIERS-MANQUANTS", Severity.FILE, "Export incomplet",
         "L'export {value} est incomplet : {detail}.", _NEW_EXPORT),
    Rule("EDT-FICHIER-BINAIRE", Severity.FILE, "Fichier binaire",
         "Le fichier n'est pas un document XML : {detail}.", _NEW_EXPORT),
    Rule("EDT-XML-MALFORME", Severity.FILE, "XML mal formé",
         "Document XML mal formé ou tronqué : {detail}.", _NEW_EXPORT),
    Rule("EDT-ENCODAGE-INVALIDE", Severity.FILE, "Encodage invalide",
         "Les octets du fichier ne correspondent pas à l'encodage {value} : {detail}.",
         _NEW_EXPORT),
    Rule("EDT-DTD-INTERDITE", Severity.FILE, "DOCTYPE ou entités refusés",
         "Le fichier déclare un DOCTYPE ou des entités ({detail}) : aucun export d'emploi du "
         "temps n'en contient, il est refusé ; rien n'est jamais chargé ni développé.",
         "Ne pas importer ce fichier : il n'a pas été produit par le logiciel d'emploi du "
         "temps. Signaler sa provenance à l'équipe sécurité."),
    Rule("EDT-ENTITE-INTERDITE", Severity.FILE, "Entité refusée",
         "Référence à une entité « {value} » : le fichier est refusé, les entités ne sont "
         "jamais développées.", _NEW_EXPORT),
    Rule("EDT-ARCHIVE-INVALIDE", Severity.FILE, "Archive invalide ou dangereuse",
         "L'archive « {value} » est illisible ou dangereuse : {detail}.", _NEW_EXPORT),
    Rule("EDT-FICHIER-TROP-VOLUMINEUX", Severity.FILE, "Fichier trop volumineux",
         "Le fichier « {value} » est trop volumineux ({detail}) : il est refusé avant "
         "d'être lu.",
         "Vérifier que c'est bien l'export ENT du logiciel d'emploi du temps ; s'il est "
         "authentique, relever la limite nommée dans la section [limits] du fichier de "
         "configuration. Rien n'a été importé."),
    Rule("EDT-UAI-INCOHERENT", Severity.FILE, "UAI incohérent",
         "Le fichier concerne l'établissement {value} et non {expected} ({detail}).",
         "Vérifier l'établissement choisi (--uai) et le fichier déposé ; rien n'a été "
         "importé."),
    Rule("EDT-ANNEE-INCOHERENTE", Severity.FILE, "Année scolaire incohérente",
         "Le fichier décrit l'année scolaire {value} alors que l'emploi du temps attendu est "
         "celui de {expected}.",
         "Exporter l'emploi du temps de la nouvelle année depuis le logiciel (après sa "
         "bascule d'année) ; rien n'a été importé."),
    Rule("EDT-CLE-PARTENAIRE-ABSENTE", Severity.FILE, "Clé partenaire nécessaire",
         "L'export EDT est chiffré (conteneur {value}) : il faut la clé privée RSA du "
         "partenaire ENT pour le lire ({detail}).",
         "Configurer la clé du projet (yearchange edt-key --project CODE --partner NOM "
         "--key FICHIER.pem) ou la donner pour cet import (--key, --partner) ; sinon "
         "déposer l'export « en clair »."),
    Rule("EDT-DECHIFFREMENT-IMPOSSIBLE", Severity.FILE, "Déchiffrement impossible",
         "L'export EDT chiffré ne peut pas être déchiffré : {detail}.",
         "Vérifier que la clé configurée est celle du partenaire déclaré à Index Education "
         "et que l'établissement exporte bien vers ce partenaire ; rien n'a été importé."),
    Rule("EDT-VERIFICATION-ECHEC", Severity.FILE, "Contrôle d'intégrité en échec",
         "Le contenu déchiffré ne correspond pas à son empreinte SHA-256 ({detail}) : le "
         "fichier est altéré ou tronqué.", _NEW_EXPORT),
    Rule("EDT-CONTENU-INVALIDE", Severity.FILE, "Contenu chiffré invalide",
         "Le contenu de l'export chiffré est inutilisable : {detail}.", _NEW_EXPORT),
    Rule("EDT-VERSION-TROP-ANCIENNE", Severity.FILE, "Version trop ancienne",
         "{value} n'est plus prise en charge (versions acceptées : {detail}) : l'import est "
         "refusé.",
         "Mettre à jour le logiciel d'emploi du temps puis refaire l'export ; rien n'a été "
         "importé."),
    Rule("EDT-VERSION-NON-ACTIVEE", Severity.FILE, "Version pas encore activée",
         "{value} n'est pas encore activée pour le projet {detail} (activation prévue avec "
         "l'import AAF d'initialisation) : l'import est refusé.",
         "Attendre l'activation de la nouvelle version pour le projet (équipe projet, MOE) "
         "ou exporter depuis une version supportée ; rien n'a été importé."),
    Rule("EDT-VERSION-A-DECLARER", Severity.FILE, "Version à déclarer",
         "La version du logiciel d'emploi du temps n'est ni lue dans le fichier ni déclarée "
         "pour l'établissement ({detail}) : la politique des versions ne peut pas "
         "s'appliquer, l'import est refusé.",
         "Déclarer le logiciel et la version de l'établissement (yearchange "
         "timetable-version set --uai UAI --logiciel udt --version 26), ou la donner à "
         "l'import manuel (--version), qui l'enregistre ; rien n'a été importé."),
    Rule("EDT-VERSION-DECLARATION-DIFFERENTE", Severity.FILE, "Version contraire à la "
         "déclaration",
         "L'import donne {value} alors que l'établissement a déclaré {detail} : l'import est "
         "refusé, la même version s'applique à tous ses imports.",
         "Importer sans --version (la déclaration s'applique) ou, si l'établissement a "
         "changé de logiciel ou de version, changer sa déclaration (yearchange "
         "timetable-version set --uai UAI --logiciel edt|udt --version V) ; rien n'a été "
         "importé."),
    Rule("EDT-PREMIER-IMPORT-MANUEL", Severity.FILE, "Premier import manuel obligatoire",
         "Le premier import de l'emploi du temps de l'année {value} doit être manuel : aucun "
         "import manuel réussi pour cet établissement, le dépôt automatique est refusé.",
         "Importer une première fois l'emploi du temps à la main (yearchange "
         "import-timetable) ; les dépôts automatiques seront ensuite traités."),
    Rule("EDT-IMPORT-AUTO-INACTIF", Severity.FILE, "Import automatique non activé",
         "Le projet {value} n'a pas l'option d'import automatique des emplois du temps : le "
         "dépôt automatique est refusé.",
         "Importer l'emploi du temps à la main (yearchange import-timetable) ou faire activer "
         "l'option pour le projet."),
    Rule("EDT-AUCUN-COURS", Severity.FILE, "Aucun cours importable",
         "Aucun des {value} cours de l'export n'est importable ({detail}) : l'import est "
         "refusé en entier, rien n'a été écrit (ni service, ni groupe, ni alternance) et "
         "l'emploi du temps déjà importé est conservé.",
         "Vérifier l'établissement (--uai) et que son annuaire N+1 est initialisé (étape 4 : "
         "classes, enseignants, matières), corriger dans le logiciel d'emploi du temps si "
         "besoin, puis refaire l'import."),
    # -- a record is not imported -------------------------------------------------------------
    Rule("EDT-CLASSE-INCONNUE", Severity.ERROR, "Classe inconnue",
         "La classe « {value} », citée par {record}, n'existe pas dans l'annuaire {year} : "
         "un import d'emploi du temps ne crée jamais de classe, {what}.",
         "Les classes viennent de l'import AAF (élèves affectés dans SIECLE) : s'il s'agit "
         "d'une classe de l'an dernier, la retirer de l'emploi du temps ; sinon affecter les "
         "élèves dans SIECLE, attendre l'import AAF, puis réimporter l'emploi du temps."),
    Rule("EDT-ENSEIGNANT-INCONNU", Severity.ERROR, "Enseignant inconnu",
         "L'enseignant {value} ({detail}) n'est pas dans l'annuaire de l'établissement : "
         "{what}.",
         "Vérifier le service de l'enseignant dans STS-web (il arrive par l'import AAF) et "
         "son nom et sa date de naissance dans le logiciel d'emploi du temps, puis "
         "réimporter."),
    Rule("EDT-MATIERE-INCONNUE", Severity.ERROR, "Matière inconnue",
         "La matière {value} ({detail}) n'existe pas dans la nomenclature des matières de "
         "l'annuaire : {what}.",
         "Rattacher la matière à son code national (BCN) dans le logiciel d'emploi du temps, "
         "puis réimporter."),
    Rule("EDT-REFERENCE-INCONNUE", Severity.ERROR, "Référence inconnue dans le fichier",
         "{Record} cite {attribute} « {value} », qui n'est pas défini(e) dans le fichier : "
         "{what}.", _FIX_IN_SOFTWARE),
    Rule("EDT-COURS-HORS-GRILLE", Severity.ERROR, "Cours hors de la grille horaire",
         "{Record} ne tombe pas dans la grille horaire ({detail}) : le cours n'est pas "
         "importé.", _FIX_IN_SOFTWARE),
    Rule("EDT-COURS-INCOMPLET", Severity.ERROR, "Cours incomplet",
         "{Record} n'a pas de {detail} : le cours n'est pas importé.", _FIX_IN_SOFTWARE),
    # -- imported with a warning ----------------------------------------------------------------
    Rule("EDT-COURS-SANS-ENSEIGNANT", Severity.WARNING, "Cours sans enseignant",
         "{Record} n'a pas d'enseignant : le service est créé sans enseignant.",
         "Affecter l'enseignant dans le logiciel d'emploi du temps ou dans l'ENT."),
    Rule("EDT-ALTERNANCE-INCONNUE", Severity.WARNING, "Alternance inconnue",
         "{Record} cite l'alternance « {value} », absente du fichier : le cours est importé "
         "chaque semaine.", _FIX_IN_SOFTWARE),
    Rule("EDT-ELEVE-INCONNU", Severity.WARNING, "Élève inconnu",
         "L'élève {value} ({detail}) n'est pas dans l'annuaire de l'établissement : il n'est "
         "pas placé dans ses groupes.",
         "Vérifier l'élève dans SIECLE (il arrive par l'import AAF ; voir aussi ses rejets "
         "AAF), puis réimporter l'emploi du temps."),
    Rule("EDT-VERSION-NON-SUPPORTEE", Severity.WARNING, "Version non supportée",
         "{value} reste acceptée mais n'est plus supportée : import sans garantie de bon "
         "fonctionnement.",
         "Mettre à jour le logiciel d'emploi du temps (versions supportées : {detail})."),
    Rule("EDT-VERSION-NON-DECLAREE", Severity.WARNING, "Version non déclarée",
         "Le fichier ne dit pas sa version {value} et aucune version n'a été déclarée : "
         "import sans contrôle de version.",
         "Déclarer la version du logiciel à l'import (--version, par exemple {detail})."),
    Rule("EDT-VERSION-INCONNUE", Severity.WARNING, "Version inconnue",
         "La version {value} n'est pas connue de la politique de versions : import sans "
         "garantie.",
         "Vérifier la version du logiciel d'emploi du temps auprès de l'établissement."),
    Rule("EDT-VERSION-DECLAREE-DIFFERENTE", Severity.WARNING, "Version déclarée différente",
         "La version déclarée ({detail}) diffère de celle du fichier ({value}) : la version "
         "du fichier s'applique.",
         "Vérifier le fichier déposé ; aucune action si c'est le bon."),
)

RULE_BOOK = RuleBook(_RULE_LIST)
"""The rule book: lookup, explanations, documented table."""

RULES: Mapping[str, Rule] = RULE_BOOK.rules
"""Every timetable rule by code, in documentation order."""

explain = RULE_BOOK.explain
severity_of = RULE_BOOK.severity_of
rules_table = RULE_BOOK.table
