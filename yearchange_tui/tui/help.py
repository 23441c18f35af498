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
         "Une unité pas encore lancée montre où elle en est dans la file du moteur : ≡ en "
         "file, ⋯ en attente d'une étape préalable (unités du calendrier), ‖ interrompue "
         "(annulée ou arrêtée en cours ; elle reprendra à son point de reprise). Une demande "
         "refusée ou en échec avant le début de l'unité s'affiche ⊘ ou ✗ avec sa raison.\n"
         "c annule ce qui est en cours ou en file sur les établissements marqués, sinon sur "
         "celui du curseur. Maj+D liste toutes les demandes envoyées au moteur. "
         "w ouvre le rapport des avertissements des passages à blanc de toute l'académie. "
         "t montre les processus de travail (hôte, pid, signe de vie) et les unités que "
         "chacun exécute. "
         "Échap efface tous les filtres. Quand les colonnes ne tiennent pas, la grille défile "
         "de côté avec le curseur (← →), l'UAI restant affichée.\n"
         "e modifie la date de la colonne du curseur ; sur la colonne Blocage, les dates et le "
         "message propres de l'établissement (dans les limites du projet, s'il l'autorise). "
         "Maj+P ouvre les paramètres du projet (blocage, avertissements des groupes libres).")),
    "timeline": (
        "Calendrier de juin à septembre",
        ("Un jour par colonne quand la largeur le permet, sinon plusieurs jours par colonne. "
         "Une ligne par étape : █ des établissements y sont planifiés, ▒ fenêtre de "
         "maintenance ; la colonne ┃ marque aujourd'hui. Les filtres de la grille s'appliquent. "
         "z passe à un jour par colonne ; ← et → décalent alors d'une semaine, Début revient à "
         "aujourd'hui. Échap revient à la grille.")),
    "rejects": (
        "Rejets des imports AAF",
        ("Les rejets des livraisons AAF, par établissement. u va au filtre UAI (le début "
         "d'une UAI suffit), puis Entrée ; filtrez aussi par code, gravité et type. / cherche "
         "partout, sans casse ni accents (« noel » trouve « NOËL ») : UAI, nom "
         "d'établissement, code, identifiant (jointure, INE), login et noms ; la liste se "
         "resserre à chaque lettre. Entrée affiche le détail : l'explication, l'action "
         "suggérée et l'enregistrement XML brut. p ouvre la fiche de la personne du rejet "
         "(compte, classe, blocage des accès, rejets, phrase à dire à l'établissement). "
         "t marque le rejet comme traité (annotation du support, possible en mode "
         "consultation), avec qui et quand ; les rejets traités sont masqués et comptés, h les "
         "montre ou les masque. x exporte la liste filtrée en CSV dans le dossier des "
         "exports (nommé rejets-UAI-date.csv pour un seul établissement). Échap efface tous les filtres. En ligne de commande : "
         "yearchange find TEXTE, yearchange person RECHERCHE.")),
    "person": (
        "Fiche d'une personne",
        ("Pourquoi cette personne ne peut-elle pas se connecter ? Son identité telle "
         "qu'importée, son établissement, son compte (créé, signalé absent du Complet, ou "
         "refusé par l'import), sa classe N+1, la réponse du blocage des accès pour "
         "aujourd'hui et ses dates, chacun de ses rejets avec explication et action, la "
         "phrase à dire à l'établissement et son dernier enregistrement XML. Échap revient "
         "aux rejets. En ligne de commande : yearchange person RECHERCHE.")),
    "log": (
        "Journal du moteur",
        ("Les évènements du moteur, du plus ancien au plus récent : ✗ erreur, ! avertissement, "
         "i information. n change le niveau minimal affiché, / filtre par texte. Entrée "
         "affiche la ligne du curseur en entier (avec ses données). Échap efface le filtre, "
         "ou revient à la grille.")),
    "dry-run-report": (
        "Avertissements des passages à blanc",
        ("Tous les avertissements du dernier passage à blanc de chaque établissement et de "
         "chaque étape, pour toute l'académie : UAI, étape, code, établissement, message. "
         "/ filtre par UAI, nom, code ou texte, c ne garde qu'un code (puis le suivant), "
         "x exporte la liste affichée en CSV (UTF-8, « ; ») dans le dossier de données. "
         "Échap efface les filtres, puis revient. En ligne de commande : yearchange dry-run "
         "--report.")),
    "fleet": (
        "Processus de travail",
        ("Les processus qui exécutent les unités (yearchange worker, sur chaque machine de "
         "calcul) : une ligne par processus — hôte, pid, état (● actif, ◌ s'arrête, "
         "! sans nouvelles), son dernier signe de vie, les files qu'il prend, ses unités en "
         "cours sur sa capacité — puis, sous lui, chaque unité qu'il exécute : UAI, étape, "
         "depuis quand. Un processus « sans nouvelles » n'a plus donné signe de vie depuis "
         "l'expiration des réservations : ses unités sont reprises par un autre processus à "
         "leur dernier point de reprise. L'écran se met à jour avec la console.\n"
         "c annule l'unité du curseur (sur la ligne d'un processus : toutes ses unités) ; "
         "Maj+C annule toutes les unités en cours de la flotte ; p met le moteur en pause "
         "(aucune nouvelle unité ne démarre, sur aucune machine) ou le relance. Chaque "
         "demande passe par le moteur, qui répond. Échap revient à la grille.")),
    "requests": (
        "Demandes au moteur",
        ("Chaque demande envoyée au moteur, de la plus récente à la plus ancienne : son "
         "numéro, l'heure, ce qu'elle demande, son état et la réponse du moteur, puis qui l'a "
         "envoyée. États : ≡ en file (aucun moteur ne l'a encore prise), ◐ en cours (import), "
         "✓ fait, ∅ sans effet (le moteur n'a rien mis en file : unités déjà terminées, "
         "aucun échec à relancer, rien à annuler), ⊘ refusé (mode consultation, étape "
         "préalable non terminée, paramètre invalide), ✗ échec. La ligne du bas donne la "
         "demande sous le curseur en entier. Échap revient à la grille.")),
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
