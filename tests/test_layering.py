"""Package layering: tuning sits below the command-line tools, rsc_db below rsc_policy, and
no module imports another module's private names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _imports_after(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())


def test_tuning_does_not_import_the_cli():
    loaded = _imports_after("rsc_policy.tuning.sweep, rsc_policy.tuning.space, "
                            "rsc_policy.tuning.report, rsc_policy.tuning.trial")
    assert "rsc_policy.tuning.sweep" in loaded
    assert not any(m == "rsc_policy.cli" or m.startswith("rsc_policy.cli.") for m in loaded)


def test_lower_packages_do_not_import_higher_ones():
    for path in SRC.rglob("*.py"):
        package = path.relative_to(SRC).parts[0]
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
        forbidden = {"rsc_cli": ("rsc_env", "rsc_db", "rsc_policy"),
                     "rsc_env": ("rsc_db", "rsc_policy"), "rsc_db": ("rsc_policy",)}
        bad = [m for m in names for top in forbidden.get(package, ())
               if m == top or m.startswith(top + ".")]
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"
        if "/tuning/" in str(path):
            assert not [m for m in names if m.startswith("rsc_policy.cli")], path


def test_no_private_names_imported_across_modules():
    for path in [*SRC.rglob("*.py"), *SRC.parent.joinpath("bench").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__" and (
                    node.level or (node.module or "").startswith("rsc_")):
                private = [a.name for a in node.names
                           if a.name.startswith("_") and not a.name.startswith("__")]
                assert not private, f"{path}: from {node.module} import {private}"
