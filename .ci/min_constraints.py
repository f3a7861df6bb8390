"""Print a pip constraints file that pins every dependency of pyproject.toml to its floor.

CI installs the project with these constraints into a separate venv and runs the suite there, so
a declared minimum (``name>=X``) is one that has been seen to work. Every requirement must have a
``>=`` floor; one without is an error, since nothing would hold it to a tested version.
Usage: python .ci/min_constraints.py [pyproject.toml] > constraints.txt
       python .ci/min_constraints.py --python [pyproject.toml]   (the oldest Python, e.g. 3.11)
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)")


def floors(pyproject: dict[str, object]) -> list[str]:
    project = pyproject["project"]
    assert isinstance(project, dict)
    name = project["name"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    pins: dict[str, str] = {}
    for requirement in requirements:
        m = _REQUIREMENT.match(requirement)
        if not m:
            raise SystemExit(f"cannot read the requirement {requirement!r}")
        package, _, specifiers = m.groups()
        if package.lower() == name.lower():  # "wanbot[test]": the project's own extras
            continue
        low = [s.strip()[2:].strip() for s in specifiers.split(",") if s.strip().startswith(">=")]
        if len(low) != 1:
            raise SystemExit(f"{requirement!r} needs exactly one '>=' floor")
        pins[package] = f"{package}=={low[0]}"
    return sorted(pins.values(), key=str.lower)


def oldest_python(pyproject: dict[str, object]) -> str:
    project = pyproject["project"]
    assert isinstance(project, dict)
    m = re.fullmatch(r">=\s*(\d+\.\d+)", str(project["requires-python"]).strip())
    if not m:
        raise SystemExit(f"cannot read requires-python {project['requires-python']!r}")
    return m.group(1)


def main() -> None:
    args = sys.argv[1:]
    want_python = "--python" in args
    args = [a for a in args if a != "--python"]
    path = Path(args[0] if args else "pyproject.toml")
    pyproject = tomllib.loads(path.read_text(encoding="utf-8"))
    print(oldest_python(pyproject) if want_python else "\n".join(floors(pyproject)))


if __name__ == "__main__":
    main()
