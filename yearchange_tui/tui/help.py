"""French help texts, one per screen, shown with F1 above the screen's keys."""

from __future__ import annotations

HELP_TEXTS: dict[str, tuple[str, str]] = {
    "grid": (
        "Grille du changement d'année",
        ("Une ligne par établissement (UAI, nom, type), une colonne par étape : 0 passage à "
         "blanc, avertissements, 1 corbeille, 2 archivage, 3 suppression, 4 annuaire, blocage "
         "des accès, 5 vie scolaire.\n"
         "Chaque case montre un symbole et un mot : ○ planifié (avec sa date) ou en attente, "
         "◐ en cours (avec le pourcentage), ✓ terminé, ✗ échec, ⊘ bloqué, ! manqué, – ignoré, "
         "· non prévu. À 80 colonnes les mots sont abrégés ; la ligne sous la grille décrit la "
         "case sous le curseur en entier.\n"
         "Les actions portent sur les établissements marqués (Espace, + pour tout marquer, - "
         "pour tout démarquer), sinon sur la ligne du curseur. L'étape lancée est celle de la "
         "colonne du curseur. Toute action demande confirmation ; les étapes 1 à 3 demandent "
         "de taper le nombre d'établissements (ou l'UAI s'il n'y en a qu'un).\n"
         "/ filtre par texte (UAI, nom, projet), f par état, k par type, o change l'ordre, "
         "g regroupe par projet, b change le volet du bas (progression, rejets, journal).\n"
         "v ouvre l'assistant de la vie scolaire (étape 5) de l'établissement du curseur.\n"
         "e modifie la date de la colonne du curseur ; sur la colonne Blocage, les dates et le "
         "message propres de l'établissement (dans les limites du projet, s'il l'autorise). "
         "Maj+P ouvre les paramètres du projet (blocage, avertissements des groupes libres).")),
    "timeline": (
        "Calendrier de juin à septembre",
        ("Un jour par colonne quand la largeur le permet, sinon plusieurs jours par colonne. "
         "Une ligne par étape : █ des établissements y sont planifiés, ▒ fenêtre de "
         "maintenance ; la colonne ┃ marque aujourd'hui. Les filtres de la grille s'appliquent. "
         "z passe à un jour par colonne ; ← et → décalent alors d'une semaine, Début revient à "
         "aujourd'hui.")),
    "rejects": (
        "Rejets des imports AAF",
        ("Les rejets des livraisons AAF, par établissement. Filtrez par UAI, code, gravité et "
         "type ; / cherche dans les messages. Entrée affiche le détail : l'explication, "
         "l'action suggérée et l'enregistrement XML brut. t marque le rejet comme traité "
         "(annotation du support, possible en mode consultation), h masque les rejets "
         "traités, x exporte la liste filtrée en CSV dans le dossier de données.")),
    "log": (
        "Journal du moteur",
        ("Les évènements du moteur, du plus ancien au plus récent : ✗ erreur, ! avertissement, "
         "i information. n change le niveau minimal affiché, / filtre par texte.")),
    "detail": (
        "Détail d'un établissement",
        ("L'historique de chaque étape avec les comptes du passage à blanc à côté de ceux de "
         "l'exécution réelle, les archives de l'étape 2 avec leur empreinte SHA-256, les rejets "
         "AAF, les classes probablement héritées de l'année N-1 et l'état du blocage des "
         "accès. v ouvre l'assistant de la vie scolaire (étape 5). Échap revient à la "
         "grille.")),
    "school-life": (
        "Assistant de la vie scolaire (étape 5)",
        ("Pour un établissement, l'année N+1 : le découpage (◉ trimestres ou semestres : "
         "Espace ou ← → pour changer, les périodes sont alors redécoupées), les dates "
         "d'ouverture et de fermeture et les dates de chaque période, au format JJ/MM/AAAA. "
         "Tout est proposé d'après le calendrier du projet (rentrée des élèves, fin d'année), "
         "ou repris de ce qui est déjà saisi. Une erreur s'affiche sous le champ concerné "
         "(✗) ; « Recalculer les périodes » les redécoupe d'après les dates saisies.\n"
         "Dessous : les alternances (semaines A/B) et ce que l'emploi du temps et l'AAF ont "
         "mis en place (services, cours, professeurs principaux), puis ce qui manque encore "
         "avant l'ouverture du cahier de textes : ✗ bloque l'étape 5, ! est à compléter.\n"
         "Tab passe au champ suivant (Entrée aussi). F7 ou le bouton Valider enregistre "
         "(en demandant avant de remplacer ce qui est déjà saisi), puis demande l'étape 5 "
         "au moteur et affiche sa réponse : terminée quand rien de bloquant ne manque, ce "
         "qui manque encore, refusée, ou en file quand aucun moteur ne tourne. Échap "
         "ferme sans rien écrire. En mode consultation, rien n'est enregistré.")),
}


def help_for(screen_name: str) -> tuple[str, str]:
    """Title and text of a screen's help (the grid's for an unknown screen)."""
    return HELP_TEXTS.get(screen_name, HELP_TEXTS["grid"])
