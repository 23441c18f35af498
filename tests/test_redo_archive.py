"""A way out of a blocked step 3 (issue #12 finding 7): a damaged step-2 archive blocks
step 3 with a message naming `yearchange run archive --redo`; the redo rebuilds the
establishment's archives through the one lifecycle while year N's data is still there,
audited; verify passes; step 3 then runs; once step 3 has run, a redo is refused.

The CLI runs as a subprocess on a 2025-2026 sample (its window is over: no override needed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from changeover_support import make_academy
from sqlalchemy import select
from test_run_window import engine_on
from tui_support import make_app, run, screen_text, wait_until

from yearchange_tui.ent.models import Establishment
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.models import EngineRequest
from yearchange_tui.tui.screens.modals import ConfirmModal, TextPromptModal
from yearchange_tui.workflow.models import ArchiveManifest, AuditEntry


def yearchange(url: str, storage: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YEARCHANGE_DATA_DIR": str(storage.parent / "data")}
    return subprocess.run([sys.executable, "-m", "yearchange_tui.cli.main", "--db", url,
                           "--storage", str(storage), *args], capture_output=True, text=True,
                          check=False, env=env, stdin=subprocess.DEVNULL)


def test_a_damaged_archive_blocks_step_3_until_the_redo_named_in_the_message(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ent.db'}"
    storage = tmp_path / "storage"
    academy = make_academy(url, storage)
    database = academy.database
    with database.session() as session:
        uai = session.scalars(select(Establishment.uai)).one()
    for step in ("1", "2"):
        result = yearchange(url, storage, "run", step, "--uai", uai, "--yes")
        assert result.returncode == 0, result.stdout + result.stderr
    with database.session() as session:
        paths = session.scalars(select(ArchiveManifest.relative_path).where(
            ArchiveManifest.archive_key.like("cahier-de-textes:%"))).all()
        archives_before = session.scalar(select(ArchiveManifest.id).order_by(
            ArchiveManifest.id.desc()).limit(1))
    damaged = storage / min(paths)
    damaged.write_bytes(damaged.read_bytes()[:100])

    blocked = yearchange(url, storage, "run", "3", "--uai", uai, "--yes")
    assert blocked.returncode == 1
    assert "les archives de l'étape 2 sont manquantes ou altérées" in blocked.stdout
    assert f"yearchange run archive --redo --uai {uai} --reason MOTIF" in blocked.stdout

    no_reason = yearchange(url, storage, "run", "archive", "--redo", "--uai", uai, "--yes")
    assert no_reason.returncode == 2
    assert "--redo exige un motif : --reason MOTIF." in no_reason.stderr

    redo = yearchange(url, storage, "run", "archive", "--redo", "--uai", uai, "--yes",
                      "--reason", "archive tronquée sur le stockage")
    assert redo.returncode == 0, redo.stdout + redo.stderr
    assert f"{uai} : " in redo.stderr and "archive(s) de l'étape 2 à reconstruire" in redo.stderr
    assert "✓ terminé" in redo.stdout
    verified = yearchange(url, storage, "verify", "--uai", uai)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    with database.session() as session:
        assert session.scalar(select(ArchiveManifest.id).order_by(
            ArchiveManifest.id.desc()).limit(1)) > archives_before  # written again
        [entry] = [row for row in session.scalars(select(AuditEntry))
                   if row.action == "redo-archive"]
    assert entry.override and json.loads(entry.details)["reason"] == (
        "archive tronquée sur le stockage")

    step3 = yearchange(url, storage, "run", "3", "--uai", uai, "--yes")
    assert step3.returncode == 0, step3.stdout + step3.stderr
    too_late = yearchange(url, storage, "run", "archive", "--redo", "--uai", uai, "--yes",
                          "--reason", "trop tard")
    assert too_late.returncode == 2
    assert "l'étape 3 (Suppression des données obsolètes N) a déjà supprimé" in too_late.stderr
    assert yearchange(url, storage, "verify", "--uai", uai).returncode == 0


def test_the_console_asks_a_reason_and_the_uai_and_the_engine_answers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ent.db'}"
    academy = make_academy(url, tmp_path / "storage")
    database = academy.database
    with database.session() as session:
        uai = session.scalars(select(Establishment.uai)).one()
    client = DatabaseEngineClient(database)

    async def scenario() -> None:
        app = make_app(client)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.sync()
            await pilot.pause()
            await pilot.press("A")
            assert await wait_until(pilot, lambda: isinstance(app.screen, TextPromptModal))
            await pilot.pause()
            assert "Motif de la reconstruction (obligatoire" in screen_text(app)
            await pilot.press("enter")
            assert "Le motif est obligatoire." in screen_text(app)
            await pilot.press(*"zip altere", "enter")
            assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
            await pilot.pause()
            assert f"Refaire l'archivage (étape 2) — {uai}" in screen_text(app)
            await pilot.press(*uai.lower(), "enter")
            await app.workers.wait_for_complete()
            await pilot.pause()

    run(scenario)
    with database.session() as session:
        [request] = session.scalars(select(EngineRequest)).all()
    assert json.loads(request.params) == {"step": "archive", "uais": [uai], "redo": True,
                                          "reason": "zip altere"}
    # The engine answers it: nothing archived yet, so nothing to rebuild.
    with engine_on(database, academy.storage):
        state = client.wait_for_request(request.id, 60)
    assert state is not None and state["status"] == "refused"
    assert f"{uai} : l'étape 2 n'a encore rien archivé" in state["message"]
