"""Where the project's data folders are (tasks/, sweeps/ and results/ sit at the repository root), and the one check
that a folder a command will write into takes files.

mqar is meant to be installed editable from its checkout (`pip install -e .`), so the named task suites and
sweep presets are read from the checkout rather than copied into site-packages.
"""

import tempfile
from pathlib import Path

from mqar.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
TASKS_DIR = REPO_ROOT / "tasks"
SWEEPS_DIR = REPO_ROOT / "sweeps"
RESULTS_DIR = REPO_ROOT / "results"
DEFAULT_STORE = RESULTS_DIR / "mqar.db"


def check_writable_folder(folder: Path, *, what: str, flag: str) -> None:
    """Create `folder` (with its parents) and a file in it, then delete the file; when either fails, a UserError
    'cannot write <what> (<reason>); pass a writable <flag>' now, not a traceback or failed runs at the first write.

    A probe, not os.access: access() judges by the permission bits for the process's real uid, so it says yes where
    the write then fails (root on NFS with root squashing, file systems that decide on their server, a full disk or
    quota) and judges another uid than the one that writes under setuid. Creating a file asks the file system itself.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # A named file (mkstemp: O_CREAT | O_EXCL), as the writes that follow make; TemporaryFile may take Linux's
        # O_TMPFILE, which creates no name. Deleted on close.
        tempfile.NamedTemporaryFile(dir=folder, prefix=".mqar-write-check-").close()
    except OSError as error:
        raise UserError(f"cannot write {what} ({error.strerror or error}); pass a writable {flag}") from None
