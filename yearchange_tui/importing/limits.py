"""The caps on what an import reads: one owner for every input size and count limit.

An archive or a file above a cap is refused whole before it can fill the disk or the
memory (AAF archives and UDT ZIPs are counted while they are inflated; STS-web and clear
EDT files by their size, before they are parsed). The caps have defaults fit for the
largest real deliveries and can be changed in the ``[limits]`` section of the
configuration file (see :func:`yearchange_tui.config.load_settings`); the command line
makes them this process's caps with :func:`configure` once the settings are read.
Each refusal names the cap and its configuration key.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

MIB = 1024 * 1024


@dataclass(frozen=True)
class InputLimits:
    """Every input cap; sizes in MiB (configuration keys are the field names).

    Attributes:
        aaf_archive_mib: decompressed size of all the members of one AAF archive.
        aaf_archive_entries: members of one AAF archive (of any kind).
        aaf_compression_ratio: largest ratio of decompressed to compressed size of an
            AAF archive member (a decompression bomb above it), whatever its size.
        udt_archive_mib: decompressed size of the UDCal entries of one UDT ZIP.
        udt_entry_mib: decompressed size of one UDCal entry (or file of a folder).
        udt_archive_entries: entries of one UDT ZIP.
        sts_file_mib: size of one STS-web file (``sts_emp``, ``emp_sts``).
        edt_file_mib: size of one clear (unencrypted) EDT export.
    """

    aaf_archive_mib: int = 20 * 1024
    aaf_archive_entries: int = 20_000
    aaf_compression_ratio: int = 200
    udt_archive_mib: int = 512
    udt_entry_mib: int = 64
    udt_archive_entries: int = 1000
    sts_file_mib: int = 64
    edt_file_mib: int = 256

    @classmethod
    def config_keys(cls) -> tuple[str, ...]:
        """The configuration keys of the ``[limits]`` section."""
        return tuple(field.name for field in fields(cls))

    def with_values(self, values: dict[str, int]) -> InputLimits:
        """These limits with some caps replaced (keys already checked)."""
        return replace(self, **values)


_limits = InputLimits()


def configure(limits: InputLimits) -> None:
    """Make ``limits`` the caps of this process (the command line does it from the settings)."""
    global _limits
    _limits = limits


def current() -> InputLimits:
    """The caps in force in this process (the defaults unless configured)."""
    return _limits


def cap_text(key: str) -> str:
    """The French naming of a cap with its value and configuration key, for refusals.

    ``limite 64 Mio (clé sts_file_mib de la section [limits] du fichier de configuration)``.
    """
    value = getattr(_limits, key)
    shown = f"{value:,}".replace(",", "\u202f")
    unit = " Mio" if key.endswith("_mib") else ""
    return (f"limite {shown}{unit} (clé {key} de la section [limits] du fichier de "
            "configuration)")
