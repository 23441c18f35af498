"""AAF (Annuaire Académique Fédérateur) parsing, validation rules, rejects, directory update."""
