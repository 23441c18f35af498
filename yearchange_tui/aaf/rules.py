"""The AAF validation rules: stable reject codes, severities, French explanations and actions.

Every problem the importer reports has a code from :data:`RULES`. Codes are stable
(tests, support scripts and the console filter on them); the explanation and the
suggested action are French templates filled with the record's details.

Severities:

- ``fichier``: the whole delivery is refused, nothing is written (exit status 2);
- ``erreur``: the record is refused, the rest of the delivery goes in;
- ``avertissement``: the record is kept, the value in question is ignored or noted;
- ``information``: nothing is refused; support staff should know.
"""

from __future__ import annotations

from collections.abc import Mapping

from yearchange_tui.importing.rules import Rule, RuleBook, Severity

__all__ = ["RULES", "RULE_BOOK", "Rule", "Severity", "explain", "rules_table", "severity_of"]

_RENEW = "Demander au rectorat une nouvelle livraison ; rien n'a été importé."
_SIECLE_NAMES = ("Renseigner le champ dans SIECLE (élèves, responsables) ou STS-web (personnels) ; "
                 "le compte sera créé au prochain import AAF.")

_RULE_LIST: tuple[Rule, ...] = (
    # -- the delivery or a whole file is refused ------------------------------------------------
    Rule("AAF-LIVRAISON-INTROUVABLE", Severity.FILE, "Livraison introuvable",
         "« {value} » n'existe pas ou n'est pas lisible{detail}.",
         "Vérifier le chemin de la livraison AAF."),
    Rule("AAF-LIVRAISON-VIDE", Severity.FILE, "Livraison vide",
         "Aucun fichier AAF (ficAlimMENESR) dans « {value} ».",
         "Vérifier que la livraison du rectorat est complète (fichiers *.xml)."),
    Rule("AAF-ARCHIVE-INVALIDE", Severity.FILE, "Archive invalide",
         "L'archive « {value} » est illisible ou dangereuse : {detail}.", _RENEW),
    Rule("AAF-FICHIER-BINAIRE", Severity.FILE, "Fichier binaire",
         "Le fichier n'est pas un document XML : {detail}.", _RENEW),
    Rule("AAF-XML-MALFORME", Severity.FILE, "XML mal formé",
         "Document XML mal formé ou tronqué : {detail}.", _RENEW),
    Rule("AAF-ENCODAGE-INVALIDE", Severity.FILE, "Encodage invalide",
         "Les octets du fichier ne correspondent pas à l'encodage {value} : {detail}.", _RENEW),
    Rule("AAF-DOCTYPE-INTERDIT", Severity.FILE, "DOCTYPE refusé",
         "Déclaration DOCTYPE refusée : « {value} ». Seul <!DOCTYPE ficAlimMENESR SYSTEM "
         "\"ficAlimMENESR.dtd\"> est accepté ; aucune ressource externe n'est jamais chargée.",
         _RENEW),
    Rule("AAF-DTD-INTERNE", Severity.FILE, "DTD interne ou entités déclarées",
         "Le fichier déclare une DTD interne ou des entités ({detail}) : il est refusé, les "
         "entités ne sont jamais développées.", _RENEW),
    Rule("AAF-ENTITE-INCONNUE", Severity.FILE, "Entité inconnue",
         "Référence à une entité inconnue « {value} » : le fichier est refusé, les entités ne "
         "sont jamais développées.", _RENEW),
    Rule("AAF-RACINE-INATTENDUE", Severity.FILE, "Élément racine inattendu",
         "L'élément racine est « {value} » au lieu de « ficAlimMENESR » : ce n'est pas un "
         "fichier AAF.", _RENEW),
    Rule("AAF-FICHIER-TYPE-INCOHERENT", Severity.FILE, "Type de fichier incohérent",
         "Le nom du fichier annonce le type {expected} mais son contenu est de type {value}.",
         "Renommer le fichier selon son contenu ou demander au rectorat une nouvelle "
         "livraison ; rien n'a été importé."),
    Rule("AAF-FICHIER-TYPE-INCONNU", Severity.FILE, "Type de fichier inconnu",
         "Impossible de déterminer le type du fichier : ni son nom ni sa catégorie « {value} » "
         "ne désignent un type AAF (EtabEducNat, Eleve, PersRelEleve, PersEducNat, "
         "MatiereEducNat, MefEducNat).", _RENEW),
    # -- a record is refused --------------------------------------------------------------------
    Rule("AAF-NOM-MANQUANT", Severity.ERROR, "Nom manquant",
         "Le nom d'usage (sn) de {record} est vide : le compte n'est pas créé.", _SIECLE_NAMES),
    Rule("AAF-PRENOM-MANQUANT", Severity.ERROR, "Prénom manquant",
         "Le prénom (givenName) de {record} ({name}) est vide : le compte n'est pas créé.",
         _SIECLE_NAMES),
    Rule("AAF-NAISSANCE-MANQUANTE", Severity.ERROR, "Date de naissance manquante",
         "La date de naissance de {record} ({name}) est vide : le compte n'est pas créé.",
         "Saisir la date de naissance de l'élève dans SIECLE ; l'élève sera créé au prochain "
         "import AAF."),
    Rule("AAF-NAISSANCE-INVALIDE", Severity.ERROR, "Date de naissance invalide",
         "La date de naissance « {value} » de {record} ({name}) n'est pas une date "
         "valide (JJ/MM/AAAA) : le compte n'est pas créé.",
         "Corriger la date de naissance de l'élève dans SIECLE."),
    Rule("AAF-UAI-INVALIDE", Severity.ERROR, "UAI invalide",
         "{Record} ({name}) a un UAI « {value} » invalide ({detail}) : elle n'est "
         "pas créée et les personnes qui y sont rattachées sont refusées.",
         "Signaler l'UAI erroné au service annuaire du rectorat."),
    Rule("AAF-STRUCTURE-INCONNUE", Severity.ERROR, "Structure de rattachement inconnue",
         "{Record} ({name}) est rattaché à la structure « {value} », absente de la livraison "
         "et de l'annuaire : la personne n'est pas importée.",
         "Vérifier que le fichier EtabEducNat de la livraison contient cette structure ; sinon "
         "signaler l'anomalie au rectorat."),
    Rule("AAF-STRUCTURE-REFUSEE", Severity.ERROR, "Structure de rattachement refusée",
         "{Record} ({name}) est rattaché à la structure « {value} », refusée dans cette "
         "livraison ({detail}) : la personne n'est pas importée.",
         "Faire corriger la structure (voir son rejet AAF-UAI-INVALIDE), puis relancer "
         "l'import."),
    Rule("AAF-INE-PARTAGE", Severity.ERROR, "INE déjà attribué",
         "L'INE {value} de {record} ({name}) est déjà attribué à {other} : {record} n'est "
         "pas importé.",
         "Vérifier la saisie de l'INE dans SIECLE : un INE est propre à un seul élève ; "
         "corriger la fiche erronée."),
    Rule("AAF-IDENTIFIANT-EN-DOUBLE", Severity.ERROR, "Identifiant en double",
         "{Record} apparaît une nouvelle fois dans la livraison (première "
         "occurrence : {detail}) : seule la première est importée.",
         "Signaler le doublon au service annuaire du rectorat."),
    Rule("AAF-IDENTIFIANT-MANQUANT", Severity.ERROR, "Identifiant manquant",
         "L'enregistrement n'a pas d'identifiant (identifier/id vide) : il n'est pas importé.",
         "Signaler l'enregistrement au service annuaire du rectorat."),
    Rule("AAF-IDENTIFIANT-INCOHERENT", Severity.ERROR, "Identifiant incohérent",
         "L'identifiant de {record} ne correspond pas à l'attribut {attribute} « {value} » : "
         "l'enregistrement n'est pas importé.",
         "Signaler l'enregistrement au service annuaire du rectorat."),
    Rule("AAF-IDENTIFIANT-INVALIDE", Severity.ERROR, "Identifiant invalide",
         "L'identifiant « {value} » est invalide ({detail}) : l'enregistrement n'est pas "
         "importé.",
         "Signaler l'enregistrement au service annuaire du rectorat."),
    Rule("AAF-IDENTIFIANT-INCONNU", Severity.ERROR, "Identifiant inconnu",
         "La requête {request} vise {record}, absent de l'annuaire et de la livraison : elle "
         "n'est pas appliquée.",
         "Vérifier que la livraison complète précédente a bien été importée avant ce delta."),
    Rule("AAF-RESPONSABLE-ORPHELIN", Severity.ERROR, "Responsable sans élève",
         "{Record} ({name}) n'est cité par aucun élève importé{detail} : son compte n'est "
         "pas créé (un responsable n'est créé que lié à un élève importé).",
         "Vérifier dans SIECLE le lien entre ce responsable et son enfant ; si l'élève qui le "
         "cite est refusé, corriger d'abord son rejet : le responsable sera créé avec lui au "
         "prochain import AAF."),
    Rule("AAF-CATEGORIE-INCOHERENTE", Severity.ERROR, "Catégorie incohérente",
         "{Record} est de catégorie « {value} » dans un fichier {kind} : il n'est pas importé.",
         "Signaler l'enregistrement au service annuaire du rectorat."),
    Rule("AAF-REQUETE-INCONNUE", Severity.ERROR, "Requête inconnue",
         "Élément « {value} » inattendu ({detail}) : il n'est pas importé.",
         "Signaler l'enregistrement au service annuaire du rectorat."),
    Rule("AAF-OPERATION-INVALIDE", Severity.ERROR, "Opération de modification invalide",
         "La modification de {attribute} de {record} demande l'opération « {value} » ; seule "
         "« replace » existe : la requête n'est pas appliquée.",
         "Signaler l'enregistrement au service annuaire du rectorat."),
    # -- the record is kept ---------------------------------------------------------------------
    Rule("AAF-DATE-INVALIDE", Severity.WARNING, "Date invalide",
         "La valeur « {value} » de l'attribut {attribute} de {record} n'est pas une date valide "
         "(JJ/MM/AAAA) : elle est ignorée, l'enregistrement est conservé.",
         "Corriger la date dans SIECLE ou STS-web."),
    Rule("AAF-REFERENCE-STRUCTURE-INCONNUE", Severity.WARNING, "Structure citée inconnue",
         "L'attribut {attribute} de {record} cite la structure « {value} », inconnue : cette "
         "valeur est ignorée, l'enregistrement est conservé.",
         "Sans effet sur le compte ; signaler au rectorat si la structure devrait exister."),
    Rule("AAF-ELEVE-SANS-CLASSE", Severity.WARNING, "Élève sans classe",
         "{Record} ({name}) n'a aucune classe dans la livraison : le compte est créé "
         "sans classe.",
         "Affecter l'élève à une classe dans SIECLE ; il y apparaîtra au prochain import."),
    Rule("AAF-VALEUR-COMPOSEE-INVALIDE", Severity.WARNING, "Valeur composée mal formée",
         "La valeur « {value} » de l'attribut {attribute} de {record} ne respecte pas la forme "
         "« {expected} » : elle est ignorée, l'enregistrement est conservé.",
         "Signaler la valeur mal formée au service annuaire du rectorat."),
    Rule("AAF-INE-MODIFIE", Severity.WARNING, "INE modifié",
         "L'INE de {record} ({name}) change : {other} devient {value}. "
         "L'enregistrement est importé avec le nouvel INE.",
         "Vérifier dans SIECLE qu'il s'agit bien du même élève (sinon deux élèves ont été "
         "confondus)."),
    Rule("AAF-INE-MANQUANT", Severity.WARNING, "INE manquant",
         "{Record} ({name}) n'a pas d'INE (ENTEleveINE vide) : sans INE, son compte risque "
         "un conflit au basculement SIECLE. L'INE manquant ne refuse pas l'enregistrement.",
         "Renseigner l'INE de l'élève dans SIECLE ; il sera repris au prochain import AAF."),
    Rule("AAF-RESPONSABLE-INCONNU", Severity.WARNING, "Responsable inconnu",
         "{Record} ({name}) cite le responsable « {value} », absent de la livraison et "
         "de l'annuaire : ce lien est ignoré.",
         "Vérifier que le fichier PersRelEleve est complet ; sinon corriger la fiche du "
         "responsable dans SIECLE."),
    Rule("AAF-ATTRIBUT-INCONNU", Severity.WARNING, "Attribut inconnu",
         "L'attribut « {attribute} » n'est pas connu pour le type {kind} ({occurrences}, "
         "la première dans {record}) : il est ignoré, les enregistrements sont "
         "conservés.",
         "Aucune action en établissement ; l'équipe MOE vérifie si une nouvelle version de "
         "l'AAF doit être prise en charge."),
    Rule("AAF-MEF-INCONNU", Severity.WARNING, "MEF inconnu",
         "Le MEF « {value} » de {record} n'existe pas dans la nomenclature MefEducNat : le code "
         "est conservé sans libellé.",
         "Signaler le MEF au service annuaire du rectorat."),
    Rule("AAF-MATIERE-INCONNUE", Severity.WARNING, "Matière inconnue",
         "La matière « {value} » citée par {record} ({attribute}) n'existe pas dans la "
         "nomenclature MatiereEducNat : le lien est conservé sans libellé.",
         "Signaler la matière au service annuaire du rectorat."),
    Rule("AAF-VALEUR-TRONQUEE", Severity.WARNING, "Valeur tronquée",
         "La valeur de {attribute} de {record} dépasse {detail} caractères : elle est "
         "tronquée.",
         "Raccourcir la valeur dans SIECLE ou STS-web."),
    Rule("AAF-CLASSE-N-1-PROBABLE", Severity.WARNING, "Classe probable de l'année passée",
         "La classe « {value} » ({uai}) ressemble à une classe de l'année passée : {detail}.",
         "Vérifier dans SIECLE que les élèves concernés sont sortis de leur ancienne classe "
         "(sortie à la mi-juillet) ; une fois les élèves réaffectés, supprimer la classe vide."),
    Rule("AAF-GROUPE-N-1-PROBABLE", Severity.WARNING, "Groupe probable de l'année passée",
         "Le groupe « {value} » ({uai}) ressemble à un groupe de l'année passée : {detail}.",
         "Vérifier dans STS-web que ce groupe n'a pas été conservé dans les choix de bascule "
         "(les groupes ne doivent jamais l'être) ; sinon réaffecter les élèves dans SIECLE, "
         "puis supprimer le groupe."),
    # -- information ----------------------------------------------------------------------------
    Rule("AAF-CLASSE-ENSEIGNANTS-SEULS", Severity.INFO, "Classe citée par des enseignants seuls",
         "La classe « {value} » ({uai}) n'est citée que par des enseignants ({detail}), par "
         "aucun élève : elle n'est pas créée (seuls les élèves créent les classes).",
         "S'il s'agit d'une classe de l'an dernier, mettre à jour le service de l'enseignant "
         "dans STS-web ; sinon affecter les élèves dans SIECLE."),
)

RULE_BOOK = RuleBook(_RULE_LIST)
"""The rule book: lookup, explanations, documented table."""

RULES: Mapping[str, Rule] = RULE_BOOK.rules
"""Every rule by code, in documentation order."""

explain = RULE_BOOK.explain
severity_of = RULE_BOOK.severity_of
rules_table = RULE_BOOK.table
