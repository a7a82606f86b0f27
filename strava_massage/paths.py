"""Where the package's non-Python files live, installed or in a source checkout."""

from pathlib import Path

_HERE = Path(__file__).resolve().parent

# Installed, templates/ sits inside the package (setup.cfg maps it there); in a source checkout
# or an editable install it is the top-level templates/ folder of the repository.
TEMPLATES_DIR = (
    _HERE / "templates" if (_HERE / "templates").is_dir() else _HERE.parent / "templates"
)
# Message catalogues: messages.pot, and one folder per added language (see the README).
TRANSLATIONS_DIR = _HERE / "translations"
