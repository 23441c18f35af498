"""``yearchange bench`` and ``console-bench``: each part against the machine's own floor."""
