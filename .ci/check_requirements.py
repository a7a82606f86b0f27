"""Check that requirements.lock pins exactly what setup.cfg asks for (or regenerate it).

    python3 .ci/check_requirements.py               # the check .ci/run makes (about 20 s)
    python3 .ci/check_requirements.py --regenerate  # rewrite requirements.lock from setup.cfg

The check installs the lock's pins, and nothing else (`--no-deps`), into a throwaway venv, runs
`pip check` there (every pinned package finds its own dependencies pinned, at versions they
accept), then checks against setup.cfg's install_requires that every requirement is pinned at a
version inside its bounds and that the lock holds no package the requirements no longer pull in.
It verifies rather than regenerates: a regeneration takes the newest releases on PyPI, so CI
would turn red the day a dependency publishes, with nothing changed here.

--regenerate installs pip-tools into a throwaway venv from PyPI and runs pip-compile; nothing is
installed anywhere else.
"""

from __future__ import annotations

import argparse
import configparser
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = "requirements.lock"
REGENERATE = "python3 .ci/check_requirements.py --regenerate"
PYPI = "https://pypi.org/simple"


def install_requires(setup_cfg: Path) -> list[str]:
    """The install-time requirements of setup.cfg, one string each (test extras left out)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(setup_cfg, encoding="utf-8")
    raw = parser.get("options", "install_requires", fallback="")
    return [line.split("#")[0].strip() for line in raw.splitlines() if line.split("#")[0].strip()]


def lock_lines(lock: Path) -> list[str]:
    """The requirement lines of a pip-compile output (comments and options left out)."""
    lines = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        text = line.split("#")[0].strip()
        if text and not text.startswith("-"):
            lines.append(text)
    return lines


def static_problems(setup_cfg: Path, lock: Path) -> list[str]:
    """What is wrong between setup.cfg and the lock, read from the two files alone."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    problems = []
    pins: dict[str, str] = {}
    for line in lock_lines(lock):
        try:
            req = Requirement(line)
        except InvalidRequirement as e:
            problems.append(f"{lock.name}: cannot read {line!r} ({e})")
            continue
        spec = list(req.specifier)
        name = canonicalize_name(req.name)
        if req.extras:
            problems.append(f"{lock.name}: {line!r} names extras (pip-compile --strip-extras)")
        if len(spec) != 1 or spec[0].operator != "==" or "*" in spec[0].version:
            problems.append(f"{lock.name}: {line!r} is not pinned to one version (==)")
        elif name in pins:
            problems.append(f"{lock.name}: {req.name} is pinned twice")
        else:
            pins[name] = spec[0].version
    for line in install_requires(setup_cfg):
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"setup.cfg requires {line!r} but {lock.name} does not pin {req.name}")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(
                f"setup.cfg requires {line!r} but {lock.name} pins {req.name}=={pins[name]}"
            )
    return problems


def closure_problems(setup_cfg: Path, lock: Path) -> list[str]:
    """Packages the requirements pull in but the lock misses, and pins nothing pulls in any more,
    read from the installed packages' metadata."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pinned = {canonicalize_name(Requirement(line).name) for line in lock_lines(lock)}
    needed: set[str] = set()
    todo = [(Requirement(line), "") for line in install_requires(setup_cfg)]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        if name in needed and not req.extras:
            continue
        needed.add(name)
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue  # pip check, or static_problems, has said it is missing
        for sub in requires:
            sub_req = Requirement(sub)
            for wanted in ("", *sorted(req.extras)):
                todo.append((sub_req, wanted))
    top = {canonicalize_name(Requirement(line).name) for line in install_requires(setup_cfg)}
    # A missing top-level requirement is static_problems' to report; one pulled in below it (an
    # extra's, which pip check never asks about) is this function's.
    missing = sorted(needed - pinned - top)
    stale = sorted(pinned - needed)
    return [f"setup.cfg needs {name}, which {lock.name} does not pin" for name in missing] + [
        f"{lock.name} pins {name}, which setup.cfg no longer needs" for name in stale
    ]


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    """Run a command, stopping the check with its output when it fails."""
    # Every command here is built from fixed arguments and this machine's own paths.
    done = subprocess.run(  # noqa: S603
        [str(c) for c in cmd], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode:
        sys.stdout.write(done.stdout + done.stderr)
        raise SystemExit(f"requirements check: {' '.join(map(str, cmd[:4]))}... failed")


def check() -> int:
    """Install the lock into a throwaway venv, pip check it, compare it with setup.cfg."""
    with tempfile.TemporaryDirectory(prefix="legwork-reqs-") as tmp:
        venv = Path(tmp) / "venv"
        run(sys.executable, "-m", "venv", venv)
        python = venv / "bin" / "python"
        quiet = ("-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check")
        run(python, *quiet, "--no-deps", "-r", ROOT / LOCK)
        # The comparison reads requirements with `packaging`; it depends on nothing, so it
        # changes nothing pip check says about the pins.
        run(python, *quiet, "--no-deps", "packaging")
        done = subprocess.run(  # noqa: S603
            [str(python), "-m", "pip", "check"], capture_output=True, text=True, check=False
        )
        problems = [line for line in done.stdout.splitlines() if line and done.returncode]
        inside = subprocess.run(  # noqa: S603
            [str(python), __file__, "--compare"], capture_output=True, text=True, check=False
        )
        problems += [line for line in inside.stdout.splitlines() if line]
        if inside.returncode and not inside.stdout:
            problems.append(inside.stderr.strip())
    if problems:
        print(f"requirements check: {LOCK} does not match setup.cfg:")
        print("\n".join(f"  {p}" for p in problems))
        print(f"Regenerate it with `{REGENERATE}` and commit it.")
        return 1
    print(f"requirements check: {LOCK} pins every requirement of setup.cfg, and nothing else")
    return 0


def compare() -> int:
    """The file and metadata comparisons, run inside the throwaway venv."""
    problems = static_problems(ROOT / "setup.cfg", ROOT / LOCK)
    problems += closure_problems(ROOT / "setup.cfg", ROOT / LOCK)
    print("\n".join(problems))
    return 1 if problems else 0


def regenerate() -> int:
    """Rewrite the lock with pip-compile from a throwaway venv, resolving against PyPI only."""
    # PyPI alone, not a machine's own wheel folders or mirrors: the pins must exist there.
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "CUSTOM_COMPILE_COMMAND": REGENERATE}
    env.pop("PIP_FIND_LINKS", None)
    with tempfile.TemporaryDirectory(prefix="legwork-lock-") as tmp:
        venv = Path(tmp) / "venv"
        run(sys.executable, "-m", "venv", venv)
        pip = ("-m", "pip", "install", "-q", "--index-url", PYPI)
        run(venv / "bin" / "python", *pip, "pip-tools", env=env)
        done = subprocess.run(  # noqa: S603
            [
                str(venv / "bin" / "pip-compile"),
                "--quiet",
                "--strip-extras",
                "--no-emit-index-url",
                "--no-emit-find-links",
                "--upgrade",
                "--index-url",
                PYPI,
                "--output-file",
                LOCK,
                "setup.cfg",
            ],
            cwd=ROOT,
            env=env,
            check=False,
        )
    return done.returncode


def main() -> int:
    """Check (default), compare inside the throwaway venv, or regenerate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regenerate", action="store_true", help="rewrite the lock from PyPI")
    parser.add_argument("--compare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.regenerate:
        return regenerate()
    if args.compare:
        return compare()
    return check()


if __name__ == "__main__":
    sys.exit(main())
