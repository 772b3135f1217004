"""`enrich init`: give a new user a config file and prompts they can edit."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from enrich.errors import UsageError

_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def shipped_config_example() -> str:
    """config.example.toml, from the checkout or from inside the installed wheel."""
    here = _CHECKOUT_ROOT / "config.example.toml"
    if here.exists():
        return here.read_text(encoding="utf-8")
    return (resources.files("enrich") / "_data" / "config.example.toml").read_text("utf-8")


def shipped_prompts_dir() -> Path:
    """The prompts/ folder, from the checkout or from inside the installed wheel."""
    here = _CHECKOUT_ROOT / "prompts"
    if here.is_dir():
        return here
    return Path(str(resources.files("enrich") / "_prompts"))


def init_project(directory: Path, *, force: bool = False) -> list[Path]:
    """Write config.toml and an editable prompts/ copy into ``directory``."""
    try:
        return _write_project(directory, force=force)
    except OSError as exc:
        where = exc.filename or directory
        raise UsageError(f"cannot write {where}: {exc.strerror or exc}",
                         "Pass --dir with a folder you can write to.") from None


def _write_project(directory: Path, *, force: bool) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.toml"
    prompts = directory / "prompts"
    existing = [p for p in (config, prompts) if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise UsageError(f"{names} already exist(s); not overwriting.",
                         "Pass --force to overwrite, or choose another --dir.")
    text = shipped_config_example()
    # Point the new config at the copied prompts so the user's edits take effect.
    text = text.replace('# dir = "prompts"', 'dir = "prompts"', 1)
    config.write_text(text, encoding="utf-8")
    if prompts.exists():
        shutil.rmtree(prompts)
    shutil.copytree(shipped_prompts_dir(), prompts)
    return [config, prompts]
