"""Start a simlat module in a child Python process with an isolated import path.

``python -m pkg.mod`` puts the current directory first on the child's import path, so a stray
``json.py`` (or ``numpy.py``) where the user happens to stand would run inside calibration workers
or the validation server. Children start in safe-path mode instead (``-P``: neither the current
directory nor the script's folder is added), and the folder that holds the ``simlat`` package is
appended after the standard library and site-packages, so nothing there can shadow them.
"""

from __future__ import annotations

import sys
from pathlib import Path

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def module_command(module: str, *args: str) -> list[str]:
    """argv that runs ``module`` as ``__main__`` (like ``python -m module args...``) in safe-path mode."""
    code = (
        f"import runpy, sys; sys.path.append({_PACKAGE_ROOT!r}); "
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-P", "-c", code, *args]
